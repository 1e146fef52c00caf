"""The deploy lock (after Kamal's): one run at a time, and a refusal that names the holder.

- On the controller: `fcntl.flock` on `<runs_root>/lock`, shared by every plan (an upgrade and
  a rollback must not overlap), with the holder written beside it in `lock.json`. The kernel
  drops a flock when its process dies, so this lock is never stale.
- Optionally on a designated host, for several controllers: an atomic `mkdir
  /var/lib/hapair/lock` plus `holder.json` inside. That one CAN go stale (a dead controller
  leaves the directory); it is only ever broken explicitly (`break_lock=True`), never silently.

`wait` seconds: poll until then, then refuse. Both locks are context managers and are released
on normal exit, on errors and on KeyboardInterrupt.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import posixpath
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from hapair.errors import Refused
from hapair.exec.journal import iso, utcnow
from hapair.exec.transport import Transport

LOCK_FILE = "lock"
HOLDER_FILE = "lock.json"
REMOTE_LOCK_DIR = "/var/lib/hapair/lock"
BREAK_HINT = "if that run is gone, break the lock explicitly (--break-lock)"


@dataclass(frozen=True)
class Holder:
    who: str  # user@controller-host
    pid: int
    command: str
    since: str
    message: str = ""
    run_id: str = ""

    @classmethod
    def current(cls, command: str, message: str = "", run_id: str = "") -> Holder:
        who = f"{getpass.getuser()}@{socket.gethostname()}"
        return cls(who, os.getpid(), command, iso(utcnow()), message, run_id)

    @classmethod
    def from_json(cls, data: str | bytes) -> Holder | None:
        try:
            d: dict[str, Any] = json.loads(data)
            return cls(str(d["who"]), int(d["pid"]), str(d["command"]), str(d["since"]),
                       str(d.get("message", "")), str(d.get("run_id", "")))
        except (ValueError, KeyError, TypeError):
            return None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"

    def describe(self) -> str:
        text = f"{self.who} (pid {self.pid}) since {self.since}, running `{self.command}`"
        return text + (f": {self.message}" if self.message else "")


class LockHeld(Refused):
    """Exit 3, with the holder's details (None when the holder file could not be read)."""

    def __init__(self, where: str, holder: Holder | None, hint: str = "") -> None:
        self.where = where
        self.holder = holder
        who = holder.describe() if holder else "another run (holder details unreadable)"
        super().__init__(f"deploy lock {where} is held by {who}" + (f"; {hint}" if hint else ""))


class _Waiter:
    """Bounded polling shared by both locks; clocks injectable for tests."""

    def __init__(self, wait: float, poll: float, sleep: Callable[[float], None],
                 monotonic: Callable[[], float]) -> None:
        self._deadline = monotonic() + max(0.0, wait)
        self._poll, self._sleep, self._monotonic = poll, sleep, monotonic

    def again(self) -> bool:
        left = self._deadline - self._monotonic()
        if left <= 0:
            return False
        self._sleep(min(self._poll, left))
        return True


class ControllerLock:
    def __init__(self, runs_root: Path, holder: Holder, *, wait: float = 0.0, poll: float = 0.2,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.root = Path(runs_root)
        self.holder = holder
        self._wait_args = (wait, poll, sleep, monotonic)
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        return self.root / LOCK_FILE

    def read_holder(self) -> Holder | None:
        try:
            return Holder.from_json((self.root / HOLDER_FILE).read_bytes())
        except FileNotFoundError:
            return None

    def acquire(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        waiter = _Waiter(*self._wait_args)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiter.again():
                    os.close(fd)
                    raise LockHeld(str(self.path), self.read_holder()) from None
        self._fd = fd
        try:
            self._write_holder()
        except BaseException:
            self.release()
            raise

    def _write_holder(self) -> None:
        # Atomic replace: a contender reads the old holder or ours, never half of one.
        tmp = self.root / f".{HOLDER_FILE}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.holder.to_json())
        os.replace(tmp, self.root / HOLDER_FILE)

    def release(self) -> None:
        if self._fd is None:
            return
        (self.root / HOLDER_FILE).unlink(missing_ok=True)  # before unlocking: we still own it
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> ControllerLock:
        self.acquire()
        return self

    def __exit__(self, _t: type[BaseException] | None, _e: BaseException | None,
                 _tb: TracebackType | None) -> None:
        self.release()


class RemoteLock:
    def __init__(self, transport: Transport, holder: Holder, *, path: str = REMOTE_LOCK_DIR,
                 wait: float = 0.0, poll: float = 1.0, break_lock: bool = False,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.t = transport
        self.holder = holder
        self.path = path
        self.break_lock = break_lock
        self.broken: Holder | None = None  # the holder we broke, for the journal
        self._wait_args = (wait, poll, sleep, monotonic)
        self._held = False

    @property
    def holder_path(self) -> str:
        return posixpath.join(self.path, "holder.json")

    @property
    def where(self) -> str:
        return f"{self.t.name}:{self.path}"

    def read_holder(self) -> Holder | None:
        try:
            return Holder.from_json(self.t.read_file(self.holder_path))
        except FileNotFoundError:
            return None

    def force_break(self) -> Holder | None:
        """Remove the lock whoever holds it; returns who held it (None if nobody)."""
        holder = self.read_holder()
        self.t.run(["rm", "-f", "--", self.holder_path], timeout=30.0)
        self.t.run(["rmdir", "--", self.path], check=False, timeout=30.0)
        return holder

    def acquire(self) -> None:
        if self.break_lock:
            self.broken = self.force_break()
        self.t.run(["mkdir", "-p", "--", posixpath.dirname(self.path)], timeout=30.0)
        waiter = _Waiter(*self._wait_args)
        while True:
            res = self.t.run(["mkdir", "--", self.path], check=False, timeout=30.0)
            if res.ok:
                break
            if not self.t.run(["test", "-d", self.path], check=False, timeout=30.0).ok:
                raise Refused(f"{self.t.name}: cannot create {self.path}: {res.stderr.strip()}")
            if not waiter.again():
                raise LockHeld(self.where, self.read_holder(), BREAK_HINT)
        self._held = True
        self.t.write_file(self.holder_path, self.holder.to_json(), mode=0o644)

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        # Someone may have broken our lock and taken it: never remove a lock that is not ours.
        if self.read_holder() == self.holder:
            self.force_break()

    def __enter__(self) -> RemoteLock:
        self.acquire()
        return self

    def __exit__(self, _t: type[BaseException] | None, exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        try:
            self.release()
        except Exception:
            if exc is None:
                raise  # otherwise keep the original error; the lock shows up as held next time


@contextmanager
def deploy_lock(runs_root: Path, holder: Holder, *, wait: float = 0.0,
                remote: Transport | None = None, break_lock: bool = False,
                remote_path: str = REMOTE_LOCK_DIR) -> Iterator[RemoteLock | None]:
    """The controller lock, then (if a host is designated) the remote one. Yields the remote
    lock so the caller can journal `broken` when `break_lock` removed someone's lock."""
    with ExitStack() as stack:
        stack.enter_context(ControllerLock(runs_root, holder, wait=wait))
        rlock = None
        if remote is not None:
            rlock = stack.enter_context(RemoteLock(remote, holder, path=remote_path, wait=wait,
                                                   break_lock=break_lock))
        yield rlock
