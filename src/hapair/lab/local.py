"""Running commands on the controller (the machine's root namespace), with bounded time."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from hapair.errors import CommandFailed

CONTROLLER = "controller"


def run(
    argv: Sequence[str], *, check: bool = True, timeout: float = 60.0, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        res = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, input=input, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(CONTROLLER, list(argv), 124, f"timed out after {timeout:g}s") from exc
    if check and res.returncode != 0:
        raise CommandFailed(CONTROLLER, list(argv), res.returncode, res.stderr)
    return res


def ok(argv: Sequence[str], timeout: float = 30.0) -> bool:
    return run(argv, check=False, timeout=timeout).returncode == 0
