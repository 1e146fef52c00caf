"""What every workflow needs from an inventory: transports, runtimes, secrets, redaction.

Generated secrets (replication password, Sentinel password, …) live beside the inventory in
`secrets/generated/`, 0600 in a 0700 directory, created on first use and reused afterwards so
a resumed run renders the same configuration.
"""

from __future__ import annotations

import os
import secrets as pysecrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from hapair.components.common import Plain
from hapair.exec.runtime import ServiceRuntime
from hapair.exec.ssh import SSHTransport
from hapair.exec.transport import Transport
from hapair.inventory import Inventory, redact
from hapair.workflows.runtimes import runtime_for, shell_for

GENERATED_DIR = "secrets/generated"


class GeneratedSecrets:
    """Secrets hapair creates itself. Values are only ever handed out as Plain (redacted)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def get(self, name: str, nbytes: int = 24) -> Plain:
        path = self.directory / name
        if not path.exists():
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
            value = pysecrets.token_urlsafe(nbytes)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(value + "\n")
        return Plain(path.read_text().strip())

    def existing(self) -> list[Plain]:
        if not self.directory.is_dir():
            return []
        return [Plain(p.read_text().strip()) for p in sorted(self.directory.iterdir())
                if p.is_file()]


@dataclass
class WorkflowContext:
    inventory: Inventory
    transports: dict[str, Transport] = field(default_factory=dict)
    _runtimes: dict[str, ServiceRuntime] = field(default_factory=dict, repr=False)

    @classmethod
    def from_inventory(cls, inventory: Inventory) -> WorkflowContext:
        transports: dict[str, Transport] = {}
        for index, host in enumerate(inventory.hosts):
            transports[host.name] = SSHTransport(
                host.name, host.address, host.ssh.port, host.ssh.user, str(host.ssh.key),
                host.ssh.host_key, host_key_ref=f"hosts[{index}].ssh.host_key",
            )
        return cls(inventory, transports)

    @cached_property
    def generated(self) -> GeneratedSecrets:
        return GeneratedSecrets(self.inventory.base_dir / GENERATED_DIR)

    @property
    def runs_root(self) -> Path:
        return self.inventory.base_dir / "runs"

    def runtime(self, host: str) -> ServiceRuntime:
        # One per host: a compose host asks which compose CLI it has only once.
        if host not in self._runtimes:
            self._runtimes[host] = runtime_for(self.inventory.host(host), self.transports[host])
        return self._runtimes[host]

    def shell(self, host: str, program: str) -> Transport:
        """Where `program`'s tools run on `host` (the host, or the program's container)."""
        return shell_for(self.runtime(host), self.transports[host], program,
                         pg_owner=self.inventory.services.postgres.owner)

    def redact(self, text: str) -> str:
        known = [*self.inventory.secrets().values(), *self.generated.existing()]
        return redact(text, known)

    def close(self) -> None:
        for t in self.transports.values():
            t.close()


@contextmanager
def workflow_context(inventory: Inventory) -> Iterator[WorkflowContext]:
    ctx = WorkflowContext.from_inventory(inventory)
    try:
        yield ctx
    finally:
        ctx.close()
