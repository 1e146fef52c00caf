"""Helpers for the lab tests: run the real `hapair lab` CLI, enter hosts, read status."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hapair.lab.config import LabConfig

REPO = Path(__file__).resolve().parents[2]
UP_TIMEOUT = 1800.0  # the first run builds the shared virtualenv
CLI_TIMEOUT = 180.0


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
