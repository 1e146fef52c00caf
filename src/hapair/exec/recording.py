"""RecordingTransport: a Transport for tests of higher layers. Nothing runs; everything is kept.

    t = RecordingTransport("node1", files={"/etc/hosts": "127.0.0.1 localhost\\n"})
    t.on(["supervisorctl", "-c", CONF, "status"], stdout="web  RUNNING  pid 7, uptime 0:01:00")
    t.on_prefix(["pg_isready"], Reply(returncode=2), Reply(returncode=0))  # 2 first, then 0
    ...code under test...
    assert t.commands == [("supervisorctl", "-c", CONF, "status"), ...]

- Every run/write_file/read_file call is appended to `calls` (a `Call` each); `commands` is the
  argv of each run, as the caller passed it (`user`/`env` are kept apart; `Call.wrapped` gives
  what a real transport would execute).
- A run's reply: the replies scripted for its exact argv, else for the longest matching argv
  prefix, else `default` (exit 0, no output). Several replies for one key are used in order and
  the last one repeats, which suits polling loops. `Reply(raises=...)` simulates a timeout or an
  unreachable host. With check=True a non-zero reply raises CommandFailed, as real transports do.
- Files live in memory (`files`: path → StoredFile with data, mode, owner). Only write_file
  changes them: a scripted `rm` does not remove anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hapair.errors import CommandFailed
from hapair.exec.files import as_bytes
from hapair.exec.transport import CommandResult, wrap_argv


@dataclass(frozen=True)
class Reply:
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    raises: Exception | None = None  # raised instead of returning a result


@dataclass(frozen=True)
class Call:
    kind: str  # "run" | "write_file" | "read_file"
    argv: tuple[str, ...] = ()
    input: bytes | None = None
    user: str | None = None
    env: Mapping[str, str] | None = None
    timeout: float | None = None
    path: str | None = None
    data: bytes | None = None
    mode: int | None = None
    owner: str | None = None

    @property
    def wrapped(self) -> list[str]:
        """The argv a real transport would execute (runuser/env prefixes included)."""
        return wrap_argv(self.argv, user=self.user, env=self.env)


@dataclass
class StoredFile:
    data: bytes
    mode: int = 0o644
    owner: str | None = None


@dataclass
class _Script:
    replies: list[Reply] = field(default_factory=list)

    def next(self) -> Reply:
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


class RecordingTransport:
    def __init__(
        self,
        name: str = "host",
        *,
        files: Mapping[str, str | bytes] | None = None,
        default: Reply | None = None,
    ) -> None:
        self.name = name
        self.default = default or Reply()
        self.calls: list[Call] = []
        self.files: dict[str, StoredFile] = {
            path: StoredFile(as_bytes(data)) for path, data in (files or {}).items()
        }
        self.closed = False
        self._exact: dict[tuple[str, ...], _Script] = {}
        self._prefix: dict[tuple[str, ...], _Script] = {}

    # -- scripting --------------------------------------------------------------------------

    def on(
        self,
        argv: Sequence[str],
        *replies: Reply,
        returncode: int = 0,
        stdout: str = "",
        stderr: str = "",
    ) -> RecordingTransport:
        """Script the reply (or replies, in order) for exactly this argv."""
        self._exact[tuple(argv)] = _Script(list(replies or [Reply(returncode, stdout, stderr)]))
        return self

    def on_prefix(
        self,
        prefix: Sequence[str],
        *replies: Reply,
        returncode: int = 0,
        stdout: str = "",
        stderr: str = "",
    ) -> RecordingTransport:
        """Script the reply for every argv that starts with `prefix` (longest prefix wins)."""
        self._prefix[tuple(prefix)] = _Script(list(replies or [Reply(returncode, stdout, stderr)]))
        return self

    # -- inspection -------------------------------------------------------------------------

    @property
    def commands(self) -> list[tuple[str, ...]]:
        return [c.argv for c in self.calls if c.kind == "run"]

    def text(self, path: str) -> str:
        return self.files[path].data.decode()

    # -- Transport --------------------------------------------------------------------------

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
        key = tuple(argv)
        data = as_bytes(input) if input is not None else None
        env_copy = dict(env) if env else None
        call = Call("run", key, input=data, user=user, env=env_copy, timeout=timeout)
        self.calls.append(call)
        reply = self._reply_for(key)
        if reply.raises is not None:
            raise reply.raises
        result = CommandResult(
            self.name, tuple(call.wrapped), reply.returncode, reply.stdout, reply.stderr
        )
        if check and not result.ok:
            raise CommandFailed(self.name, result.argv, result.returncode, result.stderr)
        return result

    def write_file(
        self, path: str, data: str | bytes, *, mode: int = 0o600, owner: str | None = None
    ) -> None:
        raw = as_bytes(data)
        self.calls.append(Call("write_file", path=path, data=raw, mode=mode, owner=owner))
        self.files[path] = StoredFile(raw, mode, owner)

    def read_file(self, path: str) -> bytes:
        self.calls.append(Call("read_file", path=path))
        if path not in self.files:
            raise FileNotFoundError(f"{self.name}: {path}: no such file")
        return self.files[path].data

    def close(self) -> None:
        self.closed = True

    def _reply_for(self, argv: tuple[str, ...]) -> Reply:
        if argv in self._exact:
            return self._exact[argv].next()
        matches = [p for p in self._prefix if argv[: len(p)] == p]
        if matches:
            return self._prefix[max(matches, key=len)].next()
        return self.default
