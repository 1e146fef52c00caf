"""Helpers shared by the live exec tests (bounded waits, stopping what we started)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_for(check: Callable[[], T], what: str, timeout: float = 15.0, every: float = 0.1) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(every)
        last = check()
    return last


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def require_free(port: int) -> None:
    if port_open(port):
        pytest.fail(f"127.0.0.1:{port} is already in use: a leftover from an earlier run?")


def stop_pid(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """TERM the process we started, wait, then KILL; never anything but this pid."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def show_log(path: Path) -> None:
    # Printed during teardown: pytest shows it with a failing test's report.
    if path.exists():
        print(f"--- {path} ---\n{path.read_text(errors='replace')[-4000:]}")


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def started(argv: Sequence[str], output: Path, *logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server for the duration of the block; stop it by its pid, then show its logs."""
    with open(output, "wb") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_pid(proc)
        for log in (output, *logs):
            show_log(log)


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie is dead for our purpose


@dataclass(frozen=True)
class Supervisord:
    dir: Path
    config: str
    include_dir: str
    log_dir: str


@dataclass(frozen=True)
class Sshd:
    dir: Path
    port: int
    host_pub: str  # the pinned key: contents of the host key's .pub
    client_key: str  # private key allowed in as root
    other_client_key: str  # a valid key that is NOT authorized
    log: Path

    def accepted_logins(self) -> int:
        return self.log.read_text(errors="replace").count("Accepted publickey")
