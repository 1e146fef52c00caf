"""Small builders for the upgrade's steps: services, files, SQL, HTTP checks.

Every verify here catches its own errors and answers with a Check and a one-line reason:
a host that cannot be reached yet is "not true yet", which the runner polls, not a crash.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from hapair.components.common import RenderedFile
from hapair.errors import HapairError
from hapair.exec.runtime import ServiceRuntime, ServiceSpec, ServiceState
from hapair.plan.step import (
    Check,
    CommandCheck,
    Fn,
    FnCheck,
    Run,
    Step,
    StepContext,
    StepKind,
    Undo,
    Verify,
    WriteFile,
)

RuntimeFor = Callable[[StepContext, str], ServiceRuntime]


def guarded(description: str, fn: Callable[[StepContext], Check]) -> FnCheck:
    """An FnCheck whose failures (unreachable host, refused connection) are a False Check."""

    def check(ctx: StepContext) -> Check:
        try:
            return fn(ctx)
        except (HapairError, OSError, httpx.HTTPError, ValueError, KeyError) as exc:
            return Check(False, f"{description}: {exc}")

    return FnCheck(description, check)


def all_checks(description: str, *verifies: Verify) -> FnCheck:
    def check(ctx: StepContext) -> Check:
        for v in verifies:
            result = v.check(ctx)
            if not result.ok:
                return result
        return Check(True, description)

    return FnCheck(description, check)


# --- files -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileIsOneOf:
    """The file holds one of the accepted contents (a later phase counts as done)."""

    path: str
    accepted: Sequence[str | bytes] = field(repr=False)
    label: str = "the planned content"

    def describe(self) -> str:
        return f"{self.path} has {self.label}"

    def check(self, ctx: StepContext) -> Check:
        try:
            data = ctx.transport.read_file(self.path)
        except FileNotFoundError:
            return Check(False, f"{ctx.host}: {self.path} is missing")
        except HapairError as exc:
            return Check(False, str(exc))
        wanted = [a.encode() if isinstance(a, str) else a for a in self.accepted]
        ok = data in wanted
        return Check(ok, f"{ctx.host}: {self.path} {'has' if ok else 'lacks'} {self.label}")


def file_step(sid: str, host: str, f: RenderedFile, reason: str, *,
              also_accept: Sequence[str] = (), kind: StepKind = StepKind.FILE,
              undo_remove: bool = True) -> Step:
    """Write a rendered file; verified by content. New files are removed on undo."""
    undo = Undo(Run(["rm", "-f", f.path])) if undo_remove else None
    return Step(
        id=sid, host=host, kind=kind, reason=reason,
        action=WriteFile(f.path, f.content, mode=f.mode, owner=f.owner),
        verify=FileIsOneOf(f.path, [f.content, *also_accept]),
        undo=undo,
    )


# --- services under the host's supervisor ------------------------------------------------------


def service_running(runtime_for: RuntimeFor, name: str) -> FnCheck:
    def check(ctx: StepContext) -> Check:
        status = runtime_for(ctx, ctx.host).status(name)
        ok = status.state is ServiceState.RUNNING
        return Check(ok, f"{ctx.host}: {name} is {status.state.value} {status.detail}".strip())

    return guarded(f"{name} is running", check)


def service_absent(runtime_for: RuntimeFor, name: str) -> FnCheck:
    def check(ctx: StepContext) -> Check:
        status = runtime_for(ctx, ctx.host).status(name)
        ok = status.state is ServiceState.ABSENT
        return Check(ok, f"{ctx.host}: {name} is {status.state.value}")

    return guarded(f"{name} is not defined", check)


def service_step(sid: str, host: str, spec: ServiceSpec, runtime_for: RuntimeFor, reason: str,
                 *, ready: Verify | None = None, settle: float = 30.0,
                 impact: str = "none") -> Step:
    """A new long-running service: defined (and started) under the host's supervisor, then
    verified running and, when given, ready. Undo removes it."""
    running = service_running(runtime_for, spec.name)
    verify = all_checks(f"{spec.name} runs and is ready", running, ready) if ready else running
    return Step(
        id=sid, host=host, kind=StepKind.NEW_SERVICE, reason=reason, client_impact=impact,
        action=Fn(f"define and start service {spec.name}: {shlex.join(spec.command)}",
                  lambda ctx: _define_and_start(runtime_for(ctx, ctx.host), spec)),
        verify=verify,
        undo=Undo(Fn(f"remove service {spec.name}",
                     lambda ctx: runtime_for(ctx, ctx.host).remove(spec.name)),
                  verify=service_absent(runtime_for, spec.name)),
        settle_timeout=settle,
    )


def _define_and_start(runtime: ServiceRuntime, spec: ServiceSpec) -> None:
    runtime.define(spec)  # starts a new or changed program (autostart)
    runtime.start(spec.name)  # and one that was defined but stopped (a resumed run)


# --- PostgreSQL ----------------------------------------------------------------------------


def psql_argv(database: str, *, csv: bool = False) -> list[str]:
    """psql as the postgres OS user over the local socket (peer auth: no password)."""
    argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-At"]
    return argv + (["--csv"] if csv else [])


def sql_check(description: str, database: str, query: str,
              accept: Callable[[str], Check]) -> FnCheck:
    def check(ctx: StepContext) -> Check:
        res = ctx.transport.run(psql_argv(database), input=query, user="postgres",
                                check=False, timeout=30)
        if not res.ok:
            return Check(False, f"{ctx.host}: psql failed: {res.stderr.strip()[:200]}")
        return accept(res.stdout.strip())

    return guarded(description, check)


def sql_run(description: str, database: str, sql: str | Callable[[], str]) -> Run:
    return Run(psql_argv(database), stdin=sql, stdin_label=description, user="postgres")


# --- HTTP from the controller ----------------------------------------------------------------


def http_ok(url: str, *, expect: int = 200, host_header: str | None = None) -> FnCheck:
    def check(_ctx: StepContext) -> Check:
        headers = {"Host": host_header} if host_header else {}
        r = httpx.get(url, timeout=5.0, headers=headers, follow_redirects=False, trust_env=False)
        return Check(r.status_code == expect, f"GET {url} answered {r.status_code}")

    return guarded(f"GET {url} answers {expect}", check)


def command_ok(argv: Sequence[str], description: str, *, user: str | None = None) -> CommandCheck:
    return CommandCheck(argv, description=description, user=user)
