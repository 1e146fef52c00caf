"""Test doubles for the runner tests: an in-memory host and a fake clock.

FakeHost understands the handful of commands the runner, lock and audit send (test, mkdir,
rm, rmdir, tee -a) against an in-memory file system, records every call, and lets a test
script other commands' results. No real host, no subprocess.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from hapair.errors import CommandFailed
from hapair.exec.transport import CommandResult
from hapair.plan.step import FileExists, FileHas, Run, Step, StepKind, Undo, WriteFile, step_id

Handler = Callable[[tuple[str, ...], bytes | None], tuple[int, str, str]]


@dataclass
class Call:
    argv: tuple[str, ...]
    input: bytes | None


@dataclass
class FakeHost:
    name: str
    files: dict[str, bytes] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    handlers: dict[tuple[str, ...], Handler] = field(default_factory=dict)
    down: bool = False  # every call raises, as an unreachable host would

    def _builtin(self, argv: tuple[str, ...], data: bytes | None) -> tuple[int, str, str]:
        match argv:
            case ("test", "-e", p):
                return (0 if p in self.files or p in self.dirs else 1), "", ""
            case ("test", "-d", p):
                return (0 if p in self.dirs else 1), "", ""
            case ("mkdir", "-p", "--", p):
                self.dirs.add(p)
                return 0, "", ""
            case ("mkdir", "--", p):
                if p in self.dirs:
                    return 1, "", f"mkdir: cannot create directory '{p}': File exists"
                self.dirs.add(p)
                return 0, "", ""
            case ("rm", "-f", "--", p):
                self.files.pop(p, None)
                return 0, "", ""
            case ("rmdir", "--", p):
                if any(posixpath.dirname(f) == p for f in self.files):
                    return 1, "", "rmdir: Directory not empty"
                self.dirs.discard(p)
                return 0, "", ""
            case ("tee", "-a", "--", p):
                self.files[p] = self.files.get(p, b"") + (data or b"")
                return 0, (data or b"").decode(), ""
        return 0, "", ""

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | bytes | None = None,
        timeout: float = 60.0,
        check: bool = True,
        user: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        if self.down:
            raise ConnectionError(f"{self.name}: unreachable")
        argv_t = tuple(argv)
        data = input.encode() if isinstance(input, str) else input
        self.calls.append(Call(argv_t, data))
        handler = self.handlers.get(argv_t, self._builtin)
        rc, out, err = handler(argv_t, data)
        if check and rc != 0:
            raise CommandFailed(self.name, argv_t, rc, err)
        return CommandResult(self.name, argv_t, rc, out, err)

    def write_file(
        self, path: str, data: str | bytes, *, mode: int = 0o600, owner: str | None = None
    ) -> None:
        if self.down:
            raise ConnectionError(f"{self.name}: unreachable")
        self.calls.append(Call(("<write_file>", path), None))
        self.files[path] = data.encode() if isinstance(data, str) else data
        self.modes[path] = mode

    def read_file(self, path: str) -> bytes:
        if self.down:
            raise ConnectionError(f"{self.name}: unreachable")
        try:
            return self.files[path]
        except KeyError:
            raise FileNotFoundError(path) from None

    def close(self) -> None:
        pass

    def argvs(self) -> list[tuple[str, ...]]:
        return [c.argv for c in self.calls]


class FakeClock:
    """monotonic() and sleep() that advance together: polling loops run instantly."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def hosts(*names: str) -> dict[str, FakeHost]:
    return {n: FakeHost(n) for n in names}


# --- step builders ---------------------------------------------------------------------------

def file_step(name: str, host: str = "node1", *, content: str = "on\n", plan: str = "upgrade",
              backup: str | None = None, settle: float = 0.0) -> Step:
    """Writes /etc/hapair/<name>; verify: it holds `content`; undo: remove it (needing
    `backup` on the host when given, as a restore-from-backup undo would)."""
    path = f"/etc/hapair/{name}"
    needs = (FileExists(backup),) if backup else ()
    return Step(
        id=step_id(plan, host, name), host=host, kind=StepKind.FILE,
        reason=f"{name} must be configured", client_impact="none",
        action=WriteFile(path, content, mode=0o644), verify=FileHas(path, content),
        undo=Undo(Run(["rm", "-f", "--", path]), needs=needs), settle_timeout=settle,
        poll_interval=0.5,
    )
