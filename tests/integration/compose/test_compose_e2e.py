"""Opt-in end-to-end test of ComposeRuntime against a real Docker engine.

Runs only with HAPAIR_DOCKER_E2E=1 (CI machines have no Docker engine). Where dockerd is
installed, the test starts a private engine of its own (private_engine.py: no iptables
changes, a busybox image imported from Debian's busybox-static, nothing pulled); otherwise it
uses a daemon that answers `docker info` and pulls busybox. It starts one container in a
throwaway project, drives it through the runtime, and removes the project (containers,
network, volumes) and the private engine even on failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from private_engine import image_fixture  # noqa: F401 — the `image` fixture

from hapair.compose.runtime import ComposeRuntime
from hapair.exec.local import LocalTransport
from hapair.exec.runtime import ServiceState

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("HAPAIR_DOCKER_E2E") != "1",
                       reason="opt-in: set HAPAIR_DOCKER_E2E=1 (needs a Docker engine)"),
]

COMPOSE = """services:
  hold:
    image: {image}
    command: ["sh", "-c", "echo started; trap 'exit 0' TERM; while true; do sleep 1; done"]
    stop_grace_period: 5s
"""


@pytest.fixture
def runtime(tmp_path: Path, image: str) -> Iterator[ComposeRuntime]:
    (tmp_path / "compose.yaml").write_text(COMPOSE.format(image=image))
    rt = ComposeRuntime(LocalTransport(), f"hapair-e2e-{uuid.uuid4().hex[:8]}",
                        [str(tmp_path / "compose.yaml")], timeout=300.0)
    try:
        yield rt
    finally:
        rt.transport.run(rt.argv("down", "-v", "-t", "5"), check=False, timeout=120.0)


def test_runtime_drives_a_real_container(runtime: ComposeRuntime) -> None:
    assert runtime.status("hold").state is ServiceState.STOPPED  # defined, no container
    runtime.start("hold")
    assert runtime.status("hold").state is ServiceState.RUNNING
    assert runtime.exec("hold", ["cat"], input="via stdin\n").stdout == "via stdin\n"
    assert "started" in runtime.logs("hold", 10)
    runtime.restart("hold")
    assert runtime.status("hold").state is ServiceState.RUNNING
    runtime.stop("hold")
    assert runtime.status("hold").state is ServiceState.STOPPED
    assert [s.name for s in runtime.status_all()] == ["hold"]
    runtime.remove("hold")
    assert runtime.status("hold").detail == "no container"
