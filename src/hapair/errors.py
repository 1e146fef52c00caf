"""Typed errors. Only the CLI turns them into exit codes (STYLE.md: lower layers raise)."""

from __future__ import annotations


class ExitCode:
    OK = 0
    STEP_FAILED = 1  # a step failed; the run can be resumed
    USAGE = 2  # bad usage or invalid inventory
    REFUSED = 3  # lock held, precondition not met
    UNHEALTHY = 4  # a health check failed after the change
    INTERRUPTED = 130


class HapairError(Exception):
    """Base of every error the CLI reports as one line instead of a traceback."""

    exit_code = ExitCode.STEP_FAILED


class UsageError(HapairError):
    exit_code = ExitCode.USAGE


class InventoryError(UsageError):
    """An invalid inventory. The message names the file and the key path."""

    def __init__(self, file: str, key_path: str, problem: str) -> None:
        self.file = file
        self.key_path = key_path
        self.problem = problem
        where = f"{file}: {key_path}: " if key_path else f"{file}: "
        super().__init__(where + problem)


class Refused(HapairError):
    """A precondition is not met (a lock is held, a peer is unreachable, versions differ)."""

    exit_code = ExitCode.REFUSED


class Unreachable(Refused):
    """A host cannot be reached. Before a run: refused (exit 3), nothing was touched. During a
    step the runner turns it into a failed, resumable step (exit 1)."""


class StepFailed(HapairError):
    exit_code = ExitCode.STEP_FAILED


class Unhealthy(HapairError):
    exit_code = ExitCode.UNHEALTHY


class CommandFailed(StepFailed):
    """A command on a host exited non-zero. Carries what is needed to explain it."""

    def __init__(self, host: str, argv: list[str] | tuple[str, ...], returncode: int, stderr: str):
        import shlex

        self.host = host
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr
        tail = stderr.strip().splitlines()[-3:] if stderr.strip() else []
        detail = (": " + " | ".join(tail)) if tail else ""
        super().__init__(
            f"{host}: `{shlex.join(self.argv)}` exited {returncode}{detail}"
        )
