"""Helpers for the lab tests: run the real `hapair lab` CLI, enter hosts, read status."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hapair.lab.config import LabConfig, config_from_env

REPO = Path(__file__).resolve().parents[2]
UP_TIMEOUT = 1800.0  # the first run builds the shared virtualenv
CLI_TIMEOUT = 180.0
SLOW = 900.0  # an upgrade, a rollback, a drill


def _cli_prefix() -> list[str]:
    """`hapair lab` once registered in hapair.cli.main; the group's own entry point before."""
    from hapair.cli.main import cli

    if "lab" in cli.commands:
        return [sys.executable, "-m", "hapair.cli.main", "lab"]
    return [sys.executable, "-m", "hapair.cli.lab"]


def run_cli(
    *args: str, input: str | None = None, timeout: float = CLI_TIMEOUT, check: bool = True
) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [*_cli_prefix(), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and res.returncode != 0:
        raise AssertionError(
            f"`hapair lab {' '.join(args)}` exited {res.returncode}\n"
            f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
        )
    return res


def hapair(*args: str, timeout: float = SLOW) -> subprocess.CompletedProcess[str]:
    """The real `hapair` CLI in a subprocess: exit code, stdout and stderr as a user sees them."""
    return subprocess.run([sys.executable, "-m", "hapair.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


@contextmanager
def fresh_lab(session: Any, tag: str = "", *, bare: bool = False) -> Iterator[Lab]:
    """`lab up` (`--bare`: hosts only), then the Lab; the hosts' logs are kept when `lab up`
    or a test of the session failed meanwhile; `lab down` whatever happens."""
    cfg = config_from_env()
    failed_before = session.testsfailed
    up_failed = False
    try:
        try:
            run_cli("up", *(["--bare"] if bare else []), timeout=UP_TIMEOUT)
        except BaseException:
            up_failed = True
            raise
        yield Lab(cfg)
    finally:
        try:
            if up_failed or session.testsfailed > failed_before:
                keep_logs(cfg, tag)
        finally:
            run_cli("down", timeout=CLI_TIMEOUT)


def keep_logs(cfg: LabConfig, tag: str = "") -> Path | None:
    """Each host's /var/log and console to runs/lab-logs[-tag]-<time>/ (after a failure)."""
    hosts_dir = cfg.lab_dir / "hosts"
    if not hosts_dir.exists():
        return None
    name = "-".join(part for part in ("lab-logs", tag, time.strftime("%Y%m%d-%H%M%S")) if part)
    dest = REPO / "runs" / name
    for host in sorted(p.name for p in hosts_dir.iterdir()):
        src = hosts_dir / host
        if (src / "root" / "var" / "log").exists():
            shutil.copytree(src / "root" / "var" / "log", dest / host / "var-log", symlinks=True)
        if (src / "console.log").exists():
            shutil.copy2(src / "console.log", dest / host / "console.log")
    sys.stderr.write(f"\nlab: host logs kept in {dest}\n")
    return dest


@dataclass
class Lab:
    cfg: LabConfig

    def cli(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, **kw)

    def sh(self, host: str, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A shell script inside a host (through `lab exec`)."""
        return run_cli("exec", host, "--", "sh", "-c", script, check=check)

    def status(self) -> dict[str, Any]:
        return json.loads(run_cli("status", "-o", "json").stdout)

    def address(self, host: str) -> str:
        return self.cfg.host(host).address


CTL = "supervisorctl -c /etc/supervisor/supervisord.conf"


def programs(lab: Lab, host: str) -> list[tuple[str, str]]:
    """(program, state) of each supervisor program on a host."""
    out = lab.sh(host, f"{CTL} status", check=False).stdout
    return [(line.split()[0], line.split()[1]) for line in out.splitlines() if line.split()]
