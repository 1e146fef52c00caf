"""Shared by the bench scripts: an upgraded lab pair, the CLI as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

HAPAIR = [sys.executable, "-m", "hapair.cli.main"]


def hapair(*args: str, timeout: float = 1800,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([*HAPAIR, *args], capture_output=True, text=True, timeout=timeout,
                         check=False)
    if check and res.returncode != 0:
        sys.exit(f"bench: `hapair {' '.join(args)}` exited {res.returncode}\n{res.stderr[-3000:]}")
    return res


def upgraded_pair(reuse: bool) -> str:
    """A lab pair after the upgrade; its inventory path. `reuse`: keep an upgraded lab."""
    if not reuse:
        hapair("lab", "up")
    inventory = json.loads(hapair("lab", "status", "-o", "json").stdout)["inventory"]
    hapair("upgrade", "-i", inventory, "-y")  # idempotent: all skipped on an upgraded lab
    return inventory


def median(values: list[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
