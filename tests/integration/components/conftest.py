"""Fixtures for component integration tests: real binaries on 127.0.0.1:18500-18599.

Every process is started through `procs` and stopped by its pid at teardown (SIGTERM, then
SIGKILL after a bounded wait), even when the test fails. Every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hapair.components.common import RenderedFile


class Procs:
    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.started: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: list[str], name: str, user: str | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.logdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, user=user,
                                env=env, stdin=subprocess.DEVNULL)
        log.close()
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def log(self, name: str) -> str:
        path = self.logdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A temp dir that the postgres user can traverse (pytest's tmp_path cannot)."""
    path = Path(tempfile.mkdtemp(prefix="hapair-comp-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def procs(workdir: Path) -> Iterator[Procs]:
    group = Procs(workdir)
    try:
        yield group
    finally:
        group.stop_all()


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             interval: float = 0.25) -> object:
    """Poll until predicate() is truthy (exceptions count as not yet); bounded."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - a probe failing just means "not yet"
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture
def wait() -> Callable[..., object]:
    return wait_for


def write(f: RenderedFile, owner: str | None = None) -> Path:
    """Write a rendered file with its mode, as the exec layer would (no owner change unless
    asked: tests run as root)."""
    path = Path(f.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, f.mode)
    with os.fdopen(fd, "w") as out:
        out.write(f.content)
    os.chmod(path, f.mode)
    if owner:
        shutil.chown(path, owner, owner)
    return path


@pytest.fixture
def write_file() -> Callable[..., Path]:
    return write

