"""Backups on compose hosts: the tools run in hapair-patroni, the files land on the host.

On a compose host PostgreSQL runs in hapair's `hapair-patroni` container. psql, pg_dump,
pg_dumpall, pg_basebackup, pg_restore and the file tools the backup uses (sha256sum, stat,
find, tail, tar, mkdir, mv, rm) run there too, as the OS user postgres, through
`compose exec -T -u postgres` (ComposeHostRuntime.shell). The backup directory is
bind-mounted into that container at the same path by the generated compose file
(compose/generate.py), so every file lands on the host, where `hapair status` lists it, and a
path in a manifest names the same file in both views.

- The official image has no `postgres` role: the tools connect as its superuser
  (POSTGRES_USER, the inventory's `services.postgres.owner`), to which the generated pg_hba
  maps the OS user postgres over the socket (`peer map=hapair`; replication too, for
  pg_basebackup).
- On the host the directory is 0700 and owned by the container's postgres uid (numeric: the
  host may have no such user). hapair sets that from the host before each backup, then checks
  that the container sees the host's directory: a pair generated before the mount existed
  would write into the container's own layer, lost when it is recreated (refused).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hapair.compose.generate_configs import BACKUP_DIR, PG_PORT
from hapair.compose.host_runtime import ComposeHostRuntime
from hapair.errors import Refused, StepFailed, UsageError
from hapair.exec.transport import CommandResult, Transport
from hapair.inventory import Host

PROGRAM = "patroni"
SERVICE = "hapair-patroni"
MOUNTED_DIR = BACKUP_DIR
PORT = PG_PORT  # in the container (its socket) and published on the host's private address
NOT_MOUNTED = (
    "{node}: {path} in {service} is not the host's {path}; nothing was written. A pair "
    "generated before hapair mounted it: add `- {path}:{path}` to {service}'s volumes (and "
    "`local replication <owner> peer map=hapair` to patroni.yml's pg_hba, for physical "
    "backups); a directory replaced on the host while {service} ran: nothing to add. Then "
    "recreate {service} on {node} (after a switchover if it is the primary)."
)


class ContainerShell:
    """The Transport inside the host's hapair-patroni container (`compose exec -T`), made on
    first use: finding the host's compose CLI is a command, and an unreachable node must fail
    where its commands do (a warning in `backup list`, the SQL fallback when observing), not
    while the pair is being described."""

    def __init__(self, host_transport: Transport, host: Host) -> None:
        if host.compose is None:
            raise Refused(f"{host.name}: runtime compose needs a `compose` section")
        self.name = host_transport.name
        self._host_transport = host_transport
        self._host = host
        self._shell: Transport | None = None

    def _inner(self) -> Transport:
        if self._shell is None:
            self._shell = ComposeHostRuntime(self._host_transport, self._host).shell(PROGRAM)
        return self._shell

    def run(self, argv: Sequence[str], *, input: str | bytes | None = None,
            timeout: float = 60.0, check: bool = True, user: str | None = None,
            env: Mapping[str, str] | None = None) -> CommandResult:
        return self._inner().run(argv, input=input, timeout=timeout, check=check, user=user,
                                 env=env)

    def write_file(self, path: str, data: str | bytes, *, mode: int = 0o600,
                   owner: str | None = None) -> None:
        self._inner().write_file(path, data, mode=mode, owner=owner)

    def read_file(self, path: str) -> bytes:
        return self._inner().read_file(path)

    def close(self) -> None:
        """Nothing of its own: the host's transport is closed by the node (Node.close)."""


def require_mounted_dir(backup_dir: str) -> None:
    """On compose hosts the backup directory is the one the generated file mounts."""
    if backup_dir.rstrip("/") != MOUNTED_DIR:
        raise UsageError(
            f"--backup-dir {backup_dir}: on compose hosts backups go to {MOUNTED_DIR}, the "
            f"host directory the generated compose file mounts into {SERVICE}"
        )


def identity_argv(path: str) -> list[str]:
    """Device and inode: equal on the host and in the container only for the same directory."""
    return ["stat", "-c", "%d:%i", "--", path]


def prepare_dir(node: str, host: Transport, container: Transport, path: str,
                os_user: str) -> None:
    """The backup directory on the host: 0700, owned by the container's `os_user`; and the
    container must see that very directory at the same path."""
    uid = container.run(["id", "-u", os_user]).stdout.strip()
    if not uid.isdigit():
        raise StepFailed(f"{node}: `id -u {os_user}` in {SERVICE} printed {uid!r}")
    host.run(["install", "-d", "-m", "0700", "-o", uid, "--", path])
    on_host = host.run(identity_argv(path)).stdout.strip()
    inside = container.run(identity_argv(path), check=False)
    if not inside.ok or inside.stdout.strip() != on_host:
        raise Refused(NOT_MOUNTED.format(node=node, path=path, service=SERVICE))
