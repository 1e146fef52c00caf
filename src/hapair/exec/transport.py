"""The transport contract: how hapair runs a command or moves a file on a host.

Every side effect on a host goes through a Transport. Commands are argument lists (never a
shell string built by hand); secrets travel on stdin or in 0600 files, never in argv or env.
Implementations: LocalTransport (the controller, or a lab host entered with nsenter) and
SSHTransport (paramiko, pinned host keys).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class CommandResult:
    host: str
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@runtime_checkable
class Transport(Protocol):
    """One host. `name` is the inventory host name, used in every message."""

    name: str

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
        """Run argv on the host. `input` is fed to stdin (the channel for secrets).

        `user` runs the command as that user (runuser). `env` is for non-secret values only.
        With check=True a non-zero exit raises hapair.errors.CommandFailed.
        """
        ...

    def write_file(
        self, path: str, data: str | bytes, *, mode: int = 0o600, owner: str | None = None
    ) -> None:
        """Write atomically (temp file + rename), created with `mode` before any byte lands."""
        ...

    def read_file(self, path: str) -> bytes:
        """Read a file; raises FileNotFoundError when it does not exist."""
        ...

    def close(self) -> None: ...


def wrap_argv(
    argv: Sequence[str], *, user: str | None = None, env: Mapping[str, str] | None = None
) -> list[str]:
    """Prefix argv with `runuser -u USER --` and `env K=V` as requested (pure, tested)."""
    out: list[str] = []
    if user:
        out += ["runuser", "-u", user, "--"]
    if env:
        out += ["env", *[f"{k}={v}" for k, v in sorted(env.items())]]
    return out + list(argv)
