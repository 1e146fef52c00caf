"""Where a host's probes run during one pass, and the rule that bounds them.

`HostSession` is a host's transport for one pass: once the host fails to answer, later
probes are skipped with that reason instead of each waiting for its own timeout. Its
`shells()` say where each tool runs: on a native host everything runs on the host itself; on
a compose host psql and df run in hapair-patroni and etcdctl in hapair-etcd
(`docker compose exec -T`), while the router's socket, the VIP and the backups stay on the
host. The container commands go through the same session, so a host that stopped answering
is not asked again whichever shell asks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hapair.compose.host_runtime import ComposeHostRuntime
from hapair.errors import CommandFailed, HapairError, StepFailed
from hapair.exec.transport import CommandResult, Transport
from hapair.observe.targets import HostTarget

SSH_TIMEOUT = 10.0  # one command on a host
# One command in a container: the compose CLI starts first (docker-compose v1 is a Python
# program that takes seconds on a busy host).
CONTAINER_TIMEOUT = 20.0


class Commands:
    """`output` and `read` over a `run` that never raises for a non-zero exit."""

    def run(self, argv: Sequence[str], *, user: str | None = None,
            env: Mapping[str, str] | None = None, input: str | None = None) -> CommandResult:
        raise NotImplementedError

    def read(self, path: str) -> str:
        """A file's text, within this pass's timeout (FileNotFoundError when missing)."""
        res = self.run(["cat", "--", path])
        if not res.ok:
            if "No such file" in res.stderr:
                raise FileNotFoundError(path)
            raise StepFailed(f"cat {path}: {res.stderr.strip()[-200:]}")
        return res.stdout

    def output(self, argv: Sequence[str], what: str, **kw: Any) -> str:
        """stdout of a command that must exit 0; else its stderr's last line."""
        res = self.run(argv, **kw)
        if not res.ok:
            tail = res.stderr.strip().splitlines()[-1:] or [f"exit {res.returncode}"]
            raise StepFailed(f"{what}: {tail[0]}")
        return res.stdout


class HostSession(Commands):
    """A host's transport for one pass (see the module doc)."""

    def __init__(self, transport: Transport, timeout: float = SSH_TIMEOUT) -> None:
        self.t = transport
        self.timeout = timeout
        self.dead = ""

    def run(self, argv: Sequence[str], *, user: str | None = None,
            env: Mapping[str, str] | None = None, input: str | bytes | None = None,
            timeout: float | None = None) -> CommandResult:
        if self.dead:
            raise StepFailed(f"skipped: {self.dead}")
        try:
            return self.t.run(argv, user=user, env=env, input=input,
                              timeout=self.timeout if timeout is None else timeout, check=False)
        except HapairError as exc:  # unreachable, timed out, connection lost
            self.dead = f"{self.t.name} stopped answering ({exc})"
            raise

    def shells(self, host: HostTarget) -> Shells:
        if host.compose is None:
            return Shells(self, self, self)
        inv_host = host.compose
        runtimes: list[ComposeHostRuntime] = []  # one per host and pass: one CLI detection

        def shell(program: str) -> Transport:
            if not runtimes:
                runtimes.append(ComposeHostRuntime(SessionTransport(self), inv_host))
            return runtimes[0].shell(program)

        return Shells(self, ContainerShell(self, lambda: shell("patroni")),
                      ContainerShell(self, lambda: shell("etcd")))


@dataclass(frozen=True)
class Shells:
    """Where each host-side probe's tool runs on one host."""

    host: Commands  # the router's socket (host python3), ip addr, backups, reachability
    postgres: Commands  # psql, df of the data directory
    etcd: Commands  # etcdctl


class SessionTransport:
    """The Transport contract over a HostSession, for the compose runtime: its commands count
    against the session (a lost host is marked dead) and are bounded by `timeout`."""

    def __init__(self, session: HostSession, timeout: float = CONTAINER_TIMEOUT) -> None:
        self.session = session
        self.name = session.t.name
        self.timeout = timeout

    def run(self, argv: Sequence[str], *, input: str | bytes | None = None,
            timeout: float = 60.0, check: bool = True, user: str | None = None,
            env: Mapping[str, str] | None = None) -> CommandResult:
        res = self.session.run(argv, user=user, env=env, input=input,
                               timeout=min(timeout, self.timeout))
        if check and not res.ok:
            raise CommandFailed(res.host, res.argv, res.returncode, res.stderr)
        return res

    def write_file(self, path: str, data: str | bytes, *, mode: int = 0o600,
                   owner: str | None = None) -> None:
        raise StepFailed(f"{self.name}: observation writes nothing (asked to write {path})")

    def read_file(self, path: str) -> bytes:
        return self.session.read(path).encode()

    def close(self) -> None:
        """The host's transport belongs to its owner."""


class ContainerShell(Commands):
    """Commands in one program's container, through the host's session. `shell` is asked
    when the first command runs: finding the compose CLI is I/O, and its failure is that
    probe's answer, not the pass's."""

    def __init__(self, session: HostSession, shell: Callable[[], Transport]) -> None:
        self.session = session
        self._make = shell
        self._shell: Transport | None = None

    def run(self, argv: Sequence[str], *, user: str | None = None,
            env: Mapping[str, str] | None = None, input: str | None = None) -> CommandResult:
        if self.session.dead:
            raise StepFailed(f"skipped: {self.session.dead}")
        if self._shell is None:
            self._shell = self._make()
        return self._shell.run(argv, user=user, env=env, input=input, timeout=CONTAINER_TIMEOUT,
                               check=False)
