"""ComposeRuntime: the ServiceRuntime contract through `docker compose` (v2), falling back to
`docker-compose` (v1) where only that exists, with the user's project name and env files.

    rt = ComposeRuntime(transport, "idp-cms", ["/opt/idp-cms/docker-compose.yml"],
                        ["/opt/idp-cms/.env.node1"])
    rt.start("authoring")   # docker compose -p idp-cms -f … --env-file … up -d --no-deps authoring
    rt.exec("postgres", ["psql", "-tAc", "SELECT 1"], input=sql)

Which CLI a host has is asked once (`docker compose version`, then `docker-compose version`)
and cached. v1 differs: one `--env-file` only, no `ps --format json` (status reads
`ps -a -q` + `docker inspect` instead). `stop`/`restart` pass `-t` = the service's grace
(60 s by default, never less): `-t` REPLACES the stop_grace_period of the file, so a value
below it would cut PostgreSQL's clean shutdown short. Commands are argument lists; secrets go
to `exec` on stdin, never in argv or environment.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from hapair.compose.discovery import parse_inspect, parse_ps
from hapair.compose.yamlio import dump_plain, load_plain
from hapair.errors import CommandFailed, Refused, UsageError
from hapair.exec.runtime import ServiceSpec, ServiceState, ServiceStatus
from hapair.exec.supervisor import check_name
from hapair.exec.transport import CommandResult, Transport

V2: tuple[str, ...] = ("docker", "compose")
V1: tuple[str, ...] = ("docker-compose",)
DEFAULT_STOP_TIMEOUT = 60
_NO_SUCH_SERVICE = "no such service"


def detect_cli(transport: Transport) -> tuple[str, ...]:
    """The compose CLI the host has: v2 (`docker compose`) first, else v1."""
    reasons = []
    for cli in (V2, V1):
        result = transport.run([*cli, "version"], check=False, timeout=30.0)
        if result.ok:
            return cli
        tail = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        reasons.append(f"`{' '.join(cli)} version`: {tail}")
    raise Refused(f"{transport.name}: no Docker Compose CLI ({'; '.join(reasons)})")


def state_of(state: str, health: str = "", exit_code: int | None = None) -> tuple[ServiceState,
                                                                                     str]:
    """A container's Docker state → (ServiceState, detail). Pure; shared by both CLIs."""
    state, health = state.lower(), health.lower()
    if state == "running":
        if health == "starting":
            return ServiceState.STARTING, "running, health check starting"
        if health == "unhealthy":
            return ServiceState.FAILED, "running but unhealthy"
        return ServiceState.RUNNING, "running" + (f" ({health})" if health else "")
    if state == "restarting":
        return ServiceState.FAILED, "restarting (it exits and Docker starts it again)"
    if state == "exited":
        if exit_code in (0, None):
            return ServiceState.STOPPED, "exited (0)"
        return ServiceState.FAILED, f"exited ({exit_code})"
    if state in ("created", "paused", "removing"):
        return ServiceState.STOPPED, state
    return ServiceState.FAILED, state or "unknown state"


_RANK = {ServiceState.FAILED: 0, ServiceState.STARTING: 1, ServiceState.STOPPED: 2,
         ServiceState.RUNNING: 3}


def aggregate(name: str, states: Sequence[tuple[ServiceState, str]]) -> ServiceStatus:
    """One status for a service's containers: the worst of them (all must be running)."""
    if not states:
        return ServiceStatus(name, ServiceState.STOPPED, detail="no container")
    worst = min(states, key=lambda s: _RANK[s[0]])
    detail = worst[1] if len(states) == 1 else f"{worst[1]} ({len(states)} containers)"
    return ServiceStatus(name, worst[0], detail=detail)


def spec_to_service(spec: ServiceSpec) -> dict[str, Any]:
    """The compose service entry hapair writes for a ServiceSpec (pure). The image comes from
    the base files; this entry sets what ServiceSpec describes."""
    entry: dict[str, Any] = {"command": list(spec.command), "user": spec.user}
    if spec.directory:
        entry["working_dir"] = spec.directory
    if spec.environment:
        entry["environment"] = dict(sorted(spec.environment.items()))
    entry["restart"] = "unless-stopped" if spec.autorestart else "no"
    entry["stop_signal"] = "SIG" + spec.stop_signal.upper().removeprefix("SIG")
    entry["stop_grace_period"] = f"{int(spec.stop_wait_secs)}s"
    return entry


class ComposeRuntime:
    def __init__(
        self,
        transport: Transport,
        project: str,
        files: Sequence[str],
        env_files: Sequence[str] = (),
        *,
        override_file: str | None = None,  # where define() writes; appended as the last -f
        profiles: Sequence[str] = (),
        stop_timeouts: Mapping[str, int] | None = None,  # per service, from stop_grace_period
        timeout: float = 600.0,  # `up` may pull or build an image
        cli: tuple[str, ...] | None = None,  # already detected (detect_cli); else asked once
    ) -> None:
        if not files:
            raise UsageError(f"{transport.name}: compose runtime needs at least one file")
        self.transport = transport
        self.project = project
        self.files = tuple(files)
        self.env_files = tuple(env_files)
        self.override_file = override_file
        self.profiles = tuple(profiles)
        self.stop_timeouts = dict(stop_timeouts or {})
        self.timeout = timeout
        self._cli = cli

    # -- the command line -------------------------------------------------------------------

    def cli(self) -> tuple[str, ...]:
        """("docker", "compose") or ("docker-compose",): asked once per runtime."""
        if self._cli is None:
            self._cli = detect_cli(self.transport)
        return self._cli

    @property
    def is_v1(self) -> bool:
        return self.cli() == V1

    def argv(self, *args: str) -> list[str]:
        cli = self.cli()
        if cli == V1 and len(self.env_files) > 1:
            raise UsageError(
                f"{self.transport.name}: docker-compose v1 reads one --env-file, "
                f"{len(self.env_files)} are configured; install the compose v2 plugin"
            )
        files = [*self.files, *([self.override_file] if self.override_file else [])]
        out = [*cli, "-p", self.project]
        for f in files:
            out += ["-f", f]
        for e in self.env_files:
            out += ["--env-file", e]
        for p in self.profiles:
            out += ["--profile", p]
        return out + list(args)

    def stop_timeout(self, name: str) -> int:
        return max(DEFAULT_STOP_TIMEOUT, int(self.stop_timeouts.get(name, 0)))

    # -- ServiceRuntime ---------------------------------------------------------------------

    def define(self, spec: ServiceSpec) -> None:
        """Write the service into the override file, check the project still validates (or
        put the old file back), then create it — and start it if autostart is set."""
        name = check_name(spec.name)
        path = self._override()
        previous = self._read_or_none(path)
        doc = load_plain(previous.decode()) if previous else {}
        doc.setdefault("services", {})[name] = spec_to_service(spec)
        if spec.stop_wait_secs:
            self.stop_timeouts[name] = int(spec.stop_wait_secs)
        self._replace_override(path, previous, dump_plain(doc, _OVERRIDE_HEADER))
        if spec.autostart:
            self._up(name)
        else:
            self._compose("create", "--no-deps", name)

    def remove(self, name: str) -> None:
        """Stop and remove the service's containers (absent is fine), then its definition
        in the override file (volumes are never removed)."""
        result = self._compose("rm", "-s", "-f", check_name(name), check=False,
                               timeout=self.stop_timeout(name) + 60.0)
        if not result.ok and _NO_SUCH_SERVICE not in result.stderr.lower():
            raise CommandFailed(result.host, result.argv, result.returncode, result.stderr)
        if self.override_file is None:
            return
        previous = self._read_or_none(self.override_file)
        doc = load_plain(previous.decode()) if previous else {}
        if name in (doc.get("services") or {}):
            del doc["services"][name]
            self._replace_override(self.override_file, previous,
                                   dump_plain(doc, _OVERRIDE_HEADER))

    def start(self, name: str) -> None:
        self._up(check_name(name))

    def stop(self, name: str) -> None:
        t = self.stop_timeout(check_name(name))
        self._compose("stop", "-t", str(t), name, timeout=t + 30.0)

    def restart(self, name: str) -> None:
        t = self.stop_timeout(check_name(name))
        self._compose("restart", "-t", str(t), name, timeout=t + self.timeout)

    def status(self, name: str) -> ServiceStatus:
        statuses = self._statuses(check_name(name))
        return statuses.get(name) or ServiceStatus(name, ServiceState.STOPPED,
                                                   detail="no container")

    def status_all(self) -> list[ServiceStatus]:
        names = self._compose("config", "--services").stdout.split()
        found = self._statuses()
        return [found.get(n) or ServiceStatus(n, ServiceState.STOPPED, detail="no container")
                for n in names]

    def logs(self, name: str, lines: int = 100) -> str:
        result = self._compose("logs", "--no-color", "--tail", str(max(1, int(lines))),
                               check_name(name), check=False, timeout=60.0)
        return result.stdout

    # -- beyond the contract ------------------------------------------------------------------

    def exec(
        self,
        service: str,
        argv: Sequence[str],
        *,
        input: str | bytes | None = None,
        user: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> CommandResult:
        """Run argv inside the service's running container (no TTY; `input` on stdin).
        `env` goes to `exec -e` (never secrets: they would show in the container's
        configuration): no `env` binary is needed in the image (etcd's is distroless)."""
        if not argv:
            raise UsageError("exec: empty command")
        opts = ["-u", user] if user else []
        for key, value in sorted((env or {}).items()):
            opts += ["-e", f"{key}={value}"]
        return self._compose("exec", "-T", *opts, check_name(service), *argv,
                             input=input, check=check, timeout=timeout)

    def run_once(self, service: str, argv: Sequence[str] = (), *,
                 timeout: float = 3600.0) -> CommandResult:
        """A one-shot container of `service` (e.g. the `migrate` profile), removed after."""
        return self._compose("run", "--rm", "-T", "--no-deps", check_name(service), *argv,
                             timeout=timeout)

    def up_all(self) -> None:
        """`up -d`: every service the files start by default (profiled ones stay off)."""
        self._compose("up", "-d")

    def create_all(self) -> None:
        """`up --no-start`: the project's networks and containers, nothing started (another
        project can then join its networks, declared external there)."""
        self._compose("up", "--no-start")

    def down(self) -> None:
        """`down`: containers and networks removed; volumes never (no `-v`)."""
        self._compose("down", timeout=self.timeout)

    def stop_all(self) -> None:
        """`stop`: every running service of the project, each with the file's grace."""
        self._compose("stop", timeout=self.timeout)

    def build(self, service: str) -> None:
        self._compose("build", check_name(service), timeout=self.timeout)

    def validate(self) -> None:
        """`config -q`: the files (with the override) form a valid project."""
        self._compose("config", "-q", timeout=60.0)

    # -- helpers ------------------------------------------------------------------------------

    def _compose(self, *args: str, check: bool = True, timeout: float | None = None,
                 input: str | bytes | None = None) -> CommandResult:
        return self.transport.run(self.argv(*args), input=input, check=check,
                                  timeout=self.timeout if timeout is None else timeout)

    def _up(self, name: str) -> None:
        result = self._compose("up", "-d", "--no-deps", name, check=False)
        if not result.ok:
            # The container's own last words usually say why it would not start.
            tail = self.logs(name, 20)
            raise CommandFailed(result.host, result.argv, result.returncode,
                                "\n".join(x for x in (tail, result.stderr) if x.strip()))

    def _statuses(self, *names: str) -> dict[str, ServiceStatus]:
        if self.is_v1:
            return self._statuses_v1(*names)
        result = self._compose("ps", "-a", "--format", "json", *names, check=False,
                               timeout=60.0)
        if not result.ok:
            if _NO_SUCH_SERVICE in result.stderr.lower() and names:
                return {n: ServiceStatus(n, ServiceState.ABSENT, detail="not defined")
                        for n in names}
            raise CommandFailed(result.host, result.argv, result.returncode, result.stderr)
        grouped: dict[str, list[tuple[ServiceState, str]]] = {}
        for entry in _parsed(result, parse_ps):
            grouped.setdefault(entry.service, []).append(
                state_of(entry.state, entry.health, entry.exit_code))
        return {n: aggregate(n, s) for n, s in grouped.items()}

    def _statuses_v1(self, *names: str) -> dict[str, ServiceStatus]:
        result = self._compose("ps", "-a", "-q", *names, check=False, timeout=60.0)
        if not result.ok:
            if _NO_SUCH_SERVICE in result.stderr.lower() and names:
                return {n: ServiceStatus(n, ServiceState.ABSENT, detail="not defined")
                        for n in names}
            raise CommandFailed(result.host, result.argv, result.returncode, result.stderr)
        ids = result.stdout.split()
        if not ids:
            return {}
        inspected = self.transport.run(["docker", "inspect", *ids], timeout=60.0)
        grouped: dict[str, list[tuple[ServiceState, str]]] = {}
        for item in _parsed(inspected, parse_inspect):
            c = item.container
            grouped.setdefault(item.service, []).append(state_of(c.state, c.health, c.exit_code))
        return {n: aggregate(n, s) for n, s in grouped.items()}

    def _override(self) -> str:
        if self.override_file is None:
            raise UsageError(
                f"{self.transport.name}: define() needs the runtime's override_file (the "
                "compose file hapair owns)")
        return self.override_file

    def _replace_override(self, path: str, previous: bytes | None, text: str) -> None:
        self.transport.run(["mkdir", "-p", posixpath.dirname(path)])
        self.transport.write_file(path, text, mode=0o644)
        result = self._compose("config", "-q", check=False, timeout=60.0)
        if result.ok:
            return
        if previous is None:
            self.transport.run(["rm", "-f", path])
        else:
            self.transport.write_file(path, previous, mode=0o644)
        raise CommandFailed(result.host, result.argv, result.returncode, result.stderr)

    def _read_or_none(self, path: str) -> bytes | None:
        try:
            return self.transport.read_file(path)
        except FileNotFoundError:
            return None


_OVERRIDE_HEADER = (
    "Services defined by hapair (ServiceRuntime.define). Written by hapair: local edits are\n"
    "overwritten. Used as the last -f file of the project."
)


def _parsed(result: CommandResult, parser: Any) -> Any:
    try:
        return parser(result.stdout)
    except ValueError as exc:
        raise CommandFailed(result.host, result.argv, result.returncode or 1, str(exc)) from None
