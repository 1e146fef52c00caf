"""Lab fixtures: one `hapair lab up` per session, `lab down` at the end even on failure.

The CLI is run as a real subprocess (exit codes and stdout/stderr as a user sees them). When
a test failed, the hosts' logs (/var/log of each host, its console) are copied to
runs/lab-logs-<time>/ before the lab is torn down.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from lab_helpers import CLI_TIMEOUT, UP_TIMEOUT, Lab, keep_logs, run_cli

from hapair.lab.config import config_from_env


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    cfg = config_from_env()
    up_failed = False
    try:
        try:
            run_cli("up", timeout=UP_TIMEOUT)
        except BaseException:
            up_failed = True
            raise
        yield Lab(cfg)
    finally:
        if up_failed or request.session.testsfailed:
            keep_logs(cfg)
        run_cli("down", timeout=CLI_TIMEOUT)
