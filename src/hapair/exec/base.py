"""What every command-running transport shares: run / write_file / read_file built on one
`_exec(argv, stdin, timeout) -> (code, stdout, stderr)` that each transport provides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hapair.errors import CommandFailed
from hapair.exec.files import MISSING_FILE_STATUS, as_bytes, atomic_write_argv, read_argv
from hapair.exec.transport import CommandResult, wrap_argv


class ExecTransport:
    name: str
    # What `_exec` receives when there is no input: None (no stdin at all) or b"" (closed).
    no_input: bytes | None = None

    def _exec(self, argv: Sequence[str], data: bytes | None,
              timeout: float) -> tuple[int, bytes, bytes]:
        raise NotImplementedError

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
        full = wrap_argv(argv, user=user, env=env)
        stdin = as_bytes(input) if input is not None else self.no_input
        code, out, err = self._exec(full, stdin, timeout)
        result = CommandResult(host=self.name, argv=tuple(full), returncode=code,
                               stdout=out.decode(errors="replace"),
                               stderr=err.decode(errors="replace"))
        if check and not result.ok:
            raise CommandFailed(self.name, result.argv, code, result.stderr)
        return result

    def write_file(
        self, path: str, data: str | bytes, *, mode: int = 0o600, owner: str | None = None
    ) -> None:
        argv = atomic_write_argv(path, mode=mode, owner=owner)
        code, _, err = self._exec(argv, as_bytes(data), 60.0)
        if code != 0:
            raise CommandFailed(self.name, argv, code, err.decode(errors="replace"))

    def read_file(self, path: str) -> bytes:
        argv = read_argv(path)
        code, out, err = self._exec(argv, self.no_input, 60.0)
        if code == MISSING_FILE_STATUS:
            raise FileNotFoundError(f"{self.name}: {path}: no such file")
        if code != 0:
            raise CommandFailed(self.name, argv, code, err.decode(errors="replace"))
        return out
