"""LabHostTransport: enter a lab host from the controller without SSH (nsenter).

Used by `lab exec` and by the lab's own provisioning. It keeps working while a host is
partitioned (it does not use the network), which is what fault injection needs. It is a
hapair.exec.transport.Transport: hapair's LocalTransport with a prefix that enters the host's
namespaces, re-resolved at every call (after `lab boot` the host has a new PID 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from hapair.errors import StepFailed
from hapair.exec.local import LocalTransport
from hapair.exec.transport import CommandResult
from hapair.lab import procs
from hapair.lab.config import config_from_env
from hapair.lab.layout import nsenter_argv
from hapair.lab.state import load

# What a login on a fresh host has; the controller's environment (its PATH with a pyenv,
# a virtualenv, …) never leaks into the host.
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}


class HostDown(StepFailed):
    """The lab host is not running (crashed, or never booted)."""


def clean_env_argv(extra: Mapping[str, str] | None = None) -> list[str]:
    env = {**BASE_ENV, **(extra or {})}
    return ["env", "-i", *[f"{k}={v}" for k, v in sorted(env.items())]]


class LabHostTransport:
    def __init__(self, name: str, lab_dir: Path | None = None) -> None:
        self.name = name
        self._state_file = (lab_dir or config_from_env().lab_dir) / "state.json"
        load(self._state_file).host(name)  # unknown host → UsageError naming the valid ones

    def pid1(self) -> int:
        """The host's PID 1 now (checked against its start time: pids get reused)."""
        hs = load(self._state_file).host(self.name)
        if hs.pid1 is None or not procs.is_same_process(hs.pid1, hs.pid1_start):
            raise HostDown(
                f"{self.name} is down (crashed or not booted): "
                f"`hapair lab boot {self.name}` starts it"
            )
        return hs.pid1

    def prefix(self, extra_env: Mapping[str, str] | None = None) -> list[str]:
        return [*nsenter_argv(self.pid1()), *clean_env_argv(extra_env)]

    def _local(self) -> LocalTransport:
        return LocalTransport(self.name, prefix=self.prefix())

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
        return self._local().run(
            argv, input=input, timeout=timeout, check=check, user=user, env=env
        )

    def write_file(
        self, path: str, data: str | bytes, *, mode: int = 0o600, owner: str | None = None
    ) -> None:
        self._local().write_file(path, data, mode=mode, owner=owner)

    def read_file(self, path: str) -> bytes:
        return self._local().read_file(path)

    def close(self) -> None:
        """Nothing to release: every command is its own process."""

    def __repr__(self) -> str:
        return f"LabHostTransport({self.name!r})"
