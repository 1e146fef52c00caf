"""Lab fixtures: one `hapair lab up` per session, `lab down` at the end even on failure.

The CLI is run as a real subprocess (exit codes and stdout/stderr as a user sees them). When
a test failed, the hosts' logs (/var/log of each host, its console) are copied to
runs/lab-logs-<time>/ before the lab is torn down.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_helpers import CLI_TIMEOUT, REPO, UP_TIMEOUT, Lab, run_cli

from hapair.lab.config import LabConfig, config_from_env


def _keep_logs(cfg: LabConfig) -> Path | None:
    hosts_dir = cfg.lab_dir / "hosts"
    if not hosts_dir.exists():
        return None
    dest = REPO / "runs" / f"lab-logs-{time.strftime('%Y%m%d-%H%M%S')}"
    for host in sorted(p.name for p in hosts_dir.iterdir()):
        src = hosts_dir / host
        if (src / "root" / "var" / "log").exists():
            shutil.copytree(src / "root" / "var" / "log", dest / host / "var-log", symlinks=True)
        if (src / "console.log").exists():
            shutil.copy2(src / "console.log", dest / host / "console.log")
    return dest


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
            kept = _keep_logs(cfg)
            if kept:
                sys.stderr.write(f"\nlab: host logs kept in {kept}\n")
        run_cli("down", timeout=CLI_TIMEOUT)
