"""LocalTransport: run commands on the controller (or in a lab host entered with a prefix).

`prefix` is prepended to every argv, e.g. `["nsenter", "-t", PID, "-n", "-m", "-p", "--"]`
to enter a lab host's namespaces; it is empty for the controller itself.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Sequence

from hapair.errors import StepFailed
from hapair.exec.base import ExecTransport

# Once the process group is killed, its pipes close at once; this only bounds a pathological case.
_REAP_TIMEOUT = 5.0


class LocalTransport(ExecTransport):
    no_input = None

    def __init__(self, name: str = "controller", *, prefix: Sequence[str] = ()) -> None:
        self.name = name
        self.prefix = tuple(prefix)

    def close(self) -> None:
        """Nothing to release: every command is its own process."""

    def _exec(
        self, argv: Sequence[str], input: bytes | None, timeout: float
    ) -> tuple[int, bytes, bytes]:
        full = [*self.prefix, *argv]
        try:
            # Own session: on timeout the whole process group goes, not only the direct child
            # (a shell's children would otherwise keep our pipes open).
            proc = subprocess.Popen(
                full,
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except (FileNotFoundError, PermissionError) as e:
            # Same outcome as over SSH, where the remote shell reports it with 127/126.
            code = 127 if isinstance(e, FileNotFoundError) else 126
            return code, b"", f"{full[0]}: {e.strerror}\n".encode()
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise StepFailed(
                f"{self.name}: `{shlex.join(argv)}` timed out after {timeout:g}s"
            ) from None
        except BaseException:
            _kill_group(proc)  # interrupted (Ctrl-C): do not leave the command running
            raise
        return proc.returncode, out, err


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.communicate(timeout=_REAP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=_REAP_TIMEOUT)
