"""The software every lab host runs from: one shared virtualenv at /opt/hapair/venv.

Built from Debian's /usr/bin/python3 (a venv made from a python under /root cannot be
executed by `postgres` or `www-data`), world-readable, rebuilt when the requirements change
(a stamp holds their hash). It is installed software, not lab state: `lab down` keeps it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hapair.errors import StepFailed, UsageError
from hapair.lab.config import SHARED_VENV

REQUIREMENTS = Path(__file__).with_name("host-requirements.txt")
BASE_PYTHON = "/usr/bin/python3"
STAMP = ".hapair-requirements.sha256"
INSTALL_TIMEOUT = 1800.0


def requirement_files(path: Path, seen: tuple[Path, ...] = ()) -> list[Path]:
    """path and every file it includes with -r (relative to the including file)."""
    path = path.resolve()
    if path in seen:
        return []
    if not path.exists():
        parent = f" (included from {seen[-1]})" if seen else ""
        raise UsageError(f"requirements file {path} is missing{parent}")
    files = [path]
    for line in path.read_text().splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) == 2 and parts[0] in {"-r", "--requirement"}:
            files += requirement_files(path.parent / parts[1], (*seen, path))
    return files


def requirements_hash(path: Path = REQUIREMENTS) -> str:
    h = hashlib.sha256()
    for f in requirement_files(path):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def is_current(venv: Path = Path(SHARED_VENV), path: Path = REQUIREMENTS) -> bool:
    stamp = venv / STAMP
    return (
        (venv / "bin" / "python").exists()
        and stamp.exists()
        and (stamp.read_text().strip() == requirements_hash(path))
    )


def ensure_venv(say: Callable[[str], None], venv: Path = Path(SHARED_VENV)) -> bool:
    """Build or update the shared venv if needed; True if it was (re)built."""
    if is_current(venv):
        return False
    digest = requirements_hash()
    old = os.umask(0o022)  # world-readable: processes running as postgres/www-data use it
    try:
        if not (venv / "bin" / "python").exists():
            say(f"creating the shared virtualenv {venv} with {BASE_PYTHON}")
            _run([BASE_PYTHON, "-m", "venv", str(venv)])
        say(f"installing host software into {venv} (pip; output follows)")
        _run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                "-r",
                str(REQUIREMENTS),
            ]
        )
    finally:
        os.umask(old)
    _run(["chmod", "-R", "a+rX", str(venv.parent)])
    (venv / STAMP).write_text(digest + "\n")
    return True


def _run(argv: list[str]) -> None:
    # Output streams to stderr: a long install shows progress instead of a silent wait.
    try:
        rc = subprocess.run(
            argv, stdout=sys.stderr, stderr=sys.stderr, timeout=INSTALL_TIMEOUT, check=False
        ).returncode
    except subprocess.TimeoutExpired:
        raise StepFailed(f"`{' '.join(argv)}` timed out after {INSTALL_TIMEOUT:g}s") from None
    if rc != 0:
        raise StepFailed(f"`{' '.join(argv)}` exited {rc}")
