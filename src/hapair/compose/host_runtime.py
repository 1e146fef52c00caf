"""The ServiceRuntime of a compose host: hapair's program names routed to the right project.

    rt = ComposeHostRuntime(transport, host)     # host: an inventory Host, runtime: compose
    rt.stop("patroni")    # docker compose -p idp-cms-hapair
                          #   -f /opt/hapair/idp-cms/node1/docker-compose.hapair.yml
                          #   stop -t 120 hapair-patroni
    rt.start("backend")   # docker compose -p idp-cms -f … --env-file … up -d --no-deps authoring
    rt.shell("patroni").run(["psql", "-XAtc", "SELECT 1"], user="postgres")
                          # … exec -T -u postgres hapair-patroni psql -XAtc 'SELECT 1'

hapair's own services are defined by the generated file (compose/generate.py), not by
`define()` one at a time: here `define(spec)` brings the generated service up (`up -d`
recreates it when its definition changed) and refuses a program the file does not have. The
user's services are the user's: hapair starts, stops and reads them but never defines or
removes them. The compose CLI (v2 or v1) is asked once per host and shared by both projects.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence

from hapair.compose.draft import hapair_compose_file
from hapair.compose.programs import (
    STOP_GRACE_S,
    Placement,
    Project,
    hapair_project_of,
    is_hapair_project,
    place,
    program_of,
)
from hapair.compose.runtime import ComposeRuntime, detect_cli
from hapair.errors import CommandFailed, Refused
from hapair.exec.runtime import ServiceSpec, ServiceStatus
from hapair.exec.transport import CommandResult, Transport
from hapair.inventory.model import Host


def bundle_dir(host: Host) -> str:
    """Where hapair's generated files for a compose host are (compose/generate.py): beside
    the hapair project's compose file (the witness's project is hapair's own)."""
    assert host.compose is not None  # compose hosts only
    if is_hapair_project(host.compose.project):
        return posixpath.dirname(host.compose.files[0])
    return posixpath.dirname(hapair_compose_file(host.compose.project, host.name))


class ComposeHostRuntime:
    def __init__(self, transport: Transport, host: Host) -> None:
        if host.compose is None:
            raise Refused(f"{host.name}: runtime compose needs a `compose` section")
        self.transport = transport
        self.host = host
        self.compose = host.compose
        self.has_app = not is_hapair_project(self.compose.project)
        self._cli: tuple[str, ...] | None = None
        self._runtimes: dict[str, ComposeRuntime] = {}

    # -- the two projects ---------------------------------------------------------------------

    def project(self, which: Project) -> ComposeRuntime:
        """"app": the user's project as the inventory names it; "hapair": hapair's own."""
        if which not in self._runtimes:
            self._runtimes[which] = self._build(which)
        return self._runtimes[which]

    def _build(self, which: Project) -> ComposeRuntime:
        if self._cli is None:
            self._cli = detect_cli(self.transport)
        c = self.compose
        if which == "app" or not self.has_app:
            return ComposeRuntime(self.transport, c.project, c.files, c.env_files,
                                  stop_timeouts=STOP_GRACE_S, cli=self._cli)
        return ComposeRuntime(self.transport, hapair_project_of(c.project),
                              [hapair_compose_file(c.project, self.host.name)],
                              stop_timeouts=STOP_GRACE_S, cli=self._cli)

    @property
    def bundle_dir(self) -> str:
        return bundle_dir(self.host)

    def placement(self, program: str) -> Placement:
        return place(self.host.name, program, self.compose.services, has_app=self.has_app)

    def _route(self, program: str) -> tuple[ComposeRuntime, str]:
        where = self.placement(program)
        return self.project(where.project), where.service

    # -- ServiceRuntime -----------------------------------------------------------------------

    def define(self, spec: ServiceSpec) -> None:
        where = self.placement(spec.name)
        if where.project != "hapair":
            raise Refused(f"{self.host.name}: {spec.name!r} is the user's service "
                          f"{where.service!r}; hapair does not redefine it")
        if spec.autostart:
            self.project("hapair").start(where.service)

    def remove(self, name: str) -> None:
        where = self.placement(name)
        if where.project != "hapair":
            raise Refused(f"{self.host.name}: {name!r} is the user's service "
                          f"{where.service!r}; hapair does not remove it")
        self.project("hapair").remove(where.service)

    def start(self, name: str) -> None:
        rt, service = self._route(name)
        rt.start(service)

    def stop(self, name: str) -> None:
        rt, service = self._route(name)
        rt.stop(service)

    def restart(self, name: str) -> None:
        rt, service = self._route(name)
        rt.restart(service)

    def status(self, name: str) -> ServiceStatus:
        rt, service = self._route(name)
        s = rt.status(service)
        return ServiceStatus(name, s.state, s.pid, s.detail)

    def status_all(self) -> list[ServiceStatus]:
        """Both projects' services, under hapair's program names where they have one."""
        out = []
        projects: tuple[Project, ...] = ("app", "hapair") if self.has_app else ("hapair",)
        for which in projects:
            for s in self.project(which).status_all():
                name = program_of(Placement(which, s.name), self.compose.services)
                out.append(ServiceStatus(name, s.state, s.pid, s.detail))
        return out

    def logs(self, name: str, lines: int = 100) -> str:
        rt, service = self._route(name)
        return rt.logs(service, lines)

    # -- commands inside a service's container ------------------------------------------------

    def shell(self, program: str) -> ContainerTransport:
        rt, service = self._route(program)
        return ContainerTransport(self.transport.name, rt, service)


class ContainerTransport:
    """The Transport contract inside a running container (`compose exec -T`): tools like
    psql, patronictl, redis-cli run where their server runs. Secrets still go on stdin."""

    def __init__(self, host: str, runtime: ComposeRuntime, service: str) -> None:
        self.name = host
        self.runtime = runtime
        self.service = service

    def run(self, argv: Sequence[str], *, input: str | bytes | None = None,
            timeout: float = 60.0, check: bool = True, user: str | None = None,
            env: Mapping[str, str] | None = None) -> CommandResult:
        return self.runtime.exec(self.service, argv, env=env, input=input,
                                 user=user, check=check, timeout=timeout)

    def write_file(self, path: str, data: str | bytes, *, mode: int = 0o600,
                   owner: str | None = None) -> None:
        # Created with `mode` before any byte lands (umask 077 + chmod), then renamed.
        script = ('umask 077; t="$1.hapair-tmp"; cat > "$t" && chmod "$2" "$t" && '
                  '{ [ -z "$3" ] || chown "$3" "$t"; } && mv -f "$t" "$1"')
        self.run(["sh", "-c", script, "sh", path, f"{mode:o}", owner or ""], input=data)

    def read_file(self, path: str) -> bytes:
        result = self.run(["cat", path], check=False)
        if result.ok:
            return result.stdout.encode()
        if "no such file" in result.stderr.lower():
            raise FileNotFoundError(f"{self.name}:{self.service}:{path}")
        raise CommandFailed(result.host, result.argv, result.returncode, result.stderr)

    def close(self) -> None:
        """Nothing of its own to close: the host's transport is closed by its owner."""
