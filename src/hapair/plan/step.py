"""Steps are data: what to change on which host, why, how to check it, and how to undo it.

A Step holds an action, a verify check and an optional undo. Each is a small object with
`describe()` (what `plan` shows and the journal records; never a secret value) and `run(ctx)` or
`check(ctx)` (the side effect, only ever called by the runner in hapair.exec.runner). Secrets
reach a host on stdin or in a 0600 file and are fetched lazily (a callable), so a Step can be
rendered, hashed and journaled without ever holding a secret in its description.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from hapair.check import Check as Check  # re-exported: steps and checks share it
from hapair.check import one_line as one_line
from hapair.errors import UsageError

if TYPE_CHECKING:  # plan stays pure: transports are only handed in by the runner
    from hapair.exec.transport import CommandResult, Transport

Redact = Callable[[str], str]
Payload = str | bytes | Callable[[], str | bytes]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)*$")


def no_redact(text: str) -> str:
    return text


def step_id(plan: str, host: str, name: str) -> str:
    """The stable id of a step, from its content: `upgrade/node2/postgres.seed`."""
    return f"{plan}/{host}/{name}"


class StepKind(StrEnum):
    PROBE = "probe"
    SQL = "sql"
    FILE = "file"
    RELOAD = "reload"
    RESTART = "restart"
    RECREATE = "recreate"
    NEW_SERVICE = "new-service"
    COMMAND = "command"

    @property
    def meaning(self) -> str:
        return _KIND_MEANING[self]


# What `plan` says about each kind (ARCHITECTURE.md §3: SQL, reload, restart or recreate).
_KIND_MEANING: dict[StepKind, str] = {
    StepKind.PROBE: "read-only check; changes nothing",
    StepKind.SQL: "SQL statement on a running server; no restart",
    StepKind.FILE: "file written; nothing reloaded",
    StepKind.RELOAD: "configuration reload; connections kept",
    StepKind.RESTART: "process restart; its connections are reset",
    StepKind.RECREATE: "container recreated (a restart in disguise)",
    StepKind.NEW_SERVICE: "new service started; existing ones untouched",
    StepKind.COMMAND: "other command on the host",
}


@dataclass(frozen=True)
class StepContext:
    """What an action or check may touch: the step's host and, rarely, another by name."""

    host: str
    transports: Mapping[str, Transport]

    def on(self, host: str | None = None) -> Transport:
        name = host or self.host
        try:
            return self.transports[name]
        except KeyError:
            raise UsageError(f"no transport for host {name!r}") from None

    @property
    def transport(self) -> Transport:
        return self.on()


class Action(Protocol):
    def describe(self) -> str: ...

    def run(self, ctx: StepContext) -> None: ...


class Verify(Protocol):
    def describe(self) -> str: ...

    def check(self, ctx: StepContext) -> Check: ...


def _payload(data: Payload) -> str | bytes:
    return data() if callable(data) else data


def _where(host: str | None) -> str:
    return f"{host}: " if host else ""


# --- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """Run an argument list; `stdin` (maybe a secret, maybe lazy) is never described."""

    argv: Sequence[str]
    stdin: Payload | None = field(default=None, repr=False)  # may be a secret
    stdin_label: str = "stdin"
    user: str | None = None
    timeout: float = 60.0
    host: str | None = None  # another host than the step's

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(self.argv))

    def describe(self) -> str:
        text = _where(self.host) + shlex.join(self.argv)
        if self.user:
            text += f" (as {self.user})"
        if self.stdin is not None:
            text += f" < {self.stdin_label}"
        return text

    def run(self, ctx: StepContext) -> None:
        data = None if self.stdin is None else _payload(self.stdin)
        ctx.on(self.host).run(self.argv, input=data, timeout=self.timeout, user=self.user)


@dataclass(frozen=True)
class WriteFile:
    """Write a file atomically with its mode set before any byte lands (Transport contract)."""

    path: str
    data: Payload = field(repr=False)
    mode: int = 0o600
    owner: str | None = None
    host: str | None = None

    def describe(self) -> str:
        owner = f", owner {self.owner}" if self.owner else ""
        return f"{_where(self.host)}write {self.path} (mode {self.mode:04o}{owner})"

    def run(self, ctx: StepContext) -> None:
        ctx.on(self.host).write_file(
            self.path, _payload(self.data), mode=self.mode, owner=self.owner
        )


@dataclass(frozen=True)
class Fn:
    """Any other action: a callable plus the one line that describes it."""

    description: str
    fn: Callable[[StepContext], None] = field(repr=False)

    def describe(self) -> str:
        return self.description

    def run(self, ctx: StepContext) -> None:
        self.fn(ctx)


# --- checks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandCheck:
    """A command whose result says yes or no; by default "exited 0"."""

    argv: Sequence[str]
    accept: Callable[[CommandResult], Check] | None = field(default=None, repr=False)
    description: str | None = None
    user: str | None = None
    timeout: float = 30.0
    host: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(self.argv))

    def describe(self) -> str:
        return self.description or _where(self.host) + shlex.join(self.argv)

    def check(self, ctx: StepContext) -> Check:
        res = ctx.on(self.host).run(self.argv, timeout=self.timeout, user=self.user, check=False)
        if self.accept is not None:
            return self.accept(res)
        return Check(res.ok, f"{res.host}: `{shlex.join(self.argv)}` exited {res.returncode}")


@dataclass(frozen=True)
class FileExists:
    path: str
    host: str | None = None

    def describe(self) -> str:
        return f"{_where(self.host)}{self.path} exists"

    def check(self, ctx: StepContext) -> Check:
        t = ctx.on(self.host)
        res = t.run(["test", "-e", self.path], check=False, timeout=30.0)
        return Check(res.ok, f"{t.name}: {self.path} {'exists' if res.ok else 'is missing'}")


@dataclass(frozen=True)
class FileHas:
    """The file holds exactly `data` (compared, never shown: it may be a secret)."""

    path: str
    data: Payload = field(repr=False)
    host: str | None = None

    def describe(self) -> str:
        return f"{_where(self.host)}{self.path} has the planned content"

    def check(self, ctx: StepContext) -> Check:
        t = ctx.on(self.host)
        want = _payload(self.data)
        want_b = want.encode() if isinstance(want, str) else want
        try:
            same = t.read_file(self.path) == want_b
        except FileNotFoundError:
            return Check(False, f"{t.name}: {self.path} is missing")
        state = "has the planned content" if same else "differs from the plan"
        return Check(same, f"{t.name}: {self.path} {state}")


@dataclass(frozen=True)
class FnCheck:
    description: str
    fn: Callable[[StepContext], Check] = field(repr=False)

    def describe(self) -> str:
        return self.description

    def check(self, ctx: StepContext) -> Check:
        return self.fn(ctx)


# --- undo, step, plan ------------------------------------------------------------------------


@dataclass(frozen=True)
class Undo:
    """How to take a step back. `needs` are checked before any undo runs (e.g. the backup
    file exists); `verify`, when given, says the undo took effect (and lets a re-run skip it)."""

    action: Action
    needs: tuple[Verify, ...] = ()
    verify: Verify | None = None
    settle_timeout: float = 0.0

    def describe(self) -> str:
        return self.action.describe()


@dataclass(frozen=True, kw_only=True)
class Step:
    """One change. PROBE steps have no action: their verify is the whole step."""

    id: str
    host: str
    kind: StepKind
    reason: str
    client_impact: str = "none"
    action: Action | None = None
    verify: Verify
    undo: Undo | None = None
    settle_timeout: float = 0.0  # how long verify-after-run may poll for the state to converge
    poll_interval: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        if not _ID.match(self.id):
            problems.append("id must be path-like, e.g. upgrade/node2/postgres.seed")
        for name in ("reason", "client_impact"):
            value = getattr(self, name)
            if not value.strip() or "\n" in value:
                problems.append(f"{name} must be one non-empty line")
        if (self.kind is StepKind.PROBE) != (self.action is None):
            problems.append("a PROBE step has no action; every other kind needs one")
        if self.kind is StepKind.PROBE and self.undo is not None:
            problems.append("a PROBE step changes nothing and has no undo")
        if self.settle_timeout < 0 or self.poll_interval <= 0:
            problems.append("settle_timeout must be >= 0 and poll_interval > 0")
        if problems:
            raise ValueError(f"step {self.id!r}: " + "; ".join(problems))

    def as_dict(self, redact: Redact = no_redact) -> dict[str, Any]:
        undo = self.undo
        return {
            "id": self.id,
            "host": self.host,
            "kind": self.kind.value,
            "kind_meaning": self.kind.meaning,
            "reason": redact(self.reason),
            "client_impact": redact(self.client_impact),
            "action": redact(self.action.describe()) if self.action else None,
            "verify": redact(self.verify.describe()),
            "undo": redact(undo.describe()) if undo else None,
            "undo_needs": [redact(n.describe()) for n in undo.needs] if undo else [],
        }


@dataclass(frozen=True)
class Plan:
    """An ordered list of steps with a name (`upgrade`, `rollback`, …)."""

    name: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name):
            raise ValueError(f"plan name {self.name!r} must be one path segment")
        dup = [sid for sid, n in Counter(s.id for s in self.steps).items() if n > 1]
        if dup:
            raise ValueError(f"plan {self.name!r}: duplicate step ids: {', '.join(dup)}")

    def get(self, sid: str) -> Step | None:
        return next((s for s in self.steps if s.id == sid), None)

    def hosts(self) -> list[str]:
        return list(dict.fromkeys(s.host for s in self.steps))

    def by_host(self) -> dict[str, list[Step]]:
        return {h: [s for s in self.steps if s.host == h] for h in self.hosts()}

    def rows(self, redact: Redact = no_redact) -> list[dict[str, Any]]:
        return [s.as_dict(redact) for s in self.steps]

    def digest(self, redact: Redact = no_redact) -> str:
        """Identifies the plan's content in the journal, so a resume can tell if it changed."""
        blob = json.dumps([self.name, self.rows(redact)], sort_keys=True).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()[:16]

    def as_dict(self, redact: Redact = no_redact) -> dict[str, Any]:
        return {
            "plan": self.name,
            "digest": self.digest(redact),
            "hosts": {h: [s.id for s in ss] for h, ss in self.by_host().items()},
            "steps": self.rows(redact),
        }
