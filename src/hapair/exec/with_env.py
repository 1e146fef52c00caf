"""A Transport that adds environment variables to every command it runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hapair.exec.transport import CommandResult, Transport


class WithEnv:
    """A transport that adds environment variables to every command (never secrets: they would
    show in the container's process list). E.g. PGUSER: the official image's superuser is
    POSTGRES_USER, not `postgres`."""

    def __init__(self, inner: Transport, env: Mapping[str, str]) -> None:
        self.inner = inner
        self.name = inner.name
        self.env = dict(env)

    def run(self, argv: Sequence[str], *, input: str | bytes | None = None,
            timeout: float = 60.0, check: bool = True, user: str | None = None,
            env: Mapping[str, str] | None = None) -> CommandResult:
        return self.inner.run(argv, input=input, timeout=timeout, check=check, user=user,
                              env={**self.env, **(env or {})})

    def write_file(self, path: str, data: str | bytes, *, mode: int = 0o600,
                   owner: str | None = None) -> None:
        self.inner.write_file(path, data, mode=mode, owner=owner)

    def read_file(self, path: str) -> bytes:
        return self.inner.read_file(path)

    def close(self) -> None:
        """The container shell is owned by its host's transport."""
