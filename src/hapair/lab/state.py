"""The lab state file ($LAB/state.json): which hosts exist, how to find their PID 1, and who
statically owns the service address (so `lab boot` restores addresses as a reboot would)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hapair.errors import Refused, UsageError

STATE_VERSION = 1


@dataclass
class HostState:
    name: str
    address: str
    netns: str
    pid1: int | None = None
    pid1_start: int | None = None  # /proc/PID/stat starttime: guards against pid reuse
    pidns: str | None = None  # e.g. "pid:[4026532301]"


@dataclass
class LabState:
    lab_dir: str
    subnet: str
    bridge: str
    controller_address: str
    service_address: str
    # The host that carries the service address as a static address, or None once a
    # service (keepalived) manages it.
    service_address_owner: str | None
    hosts: dict[str, HostState] = field(default_factory=dict)
    version: int = STATE_VERSION

    def host(self, name: str) -> HostState:
        try:
            return self.hosts[name]
        except KeyError:
            valid = ", ".join(self.hosts)
            raise UsageError(f"unknown lab host {name!r}; valid hosts: {valid}") from None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LabState:
        raw = json.loads(text)
        hosts = {k: HostState(**v) for k, v in raw.pop("hosts", {}).items()}
        return cls(hosts=hosts, **raw)


def load(path: Path) -> LabState:
    try:
        return LabState.from_json(path.read_text())
    except FileNotFoundError:
        raise Refused(f"no lab here ({path} missing): run `hapair lab up` first") from None
    except (ValueError, TypeError) as exc:
        raise Refused(f"{path}: unreadable lab state ({exc}); run `hapair lab up`") from None


def save(path: Path, state: LabState) -> None:
    """Atomic write (temp file + rename), 0600 like everything else in the lab directory."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(state.to_json())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def set_service_address_owner(path: Path, owner: str | None) -> LabState:
    """Hand the static service address to a host, or to nobody (None) when keepalived takes it.

    Only the state changes: the address itself moves at the next `lab boot` of the old and
    new owner (or is moved right away by the caller, e.g. the upgrade).
    """
    state = load(path)
    if owner is not None:
        state.host(owner)  # unknown host → UsageError naming the valid ones
    state.service_address_owner = owner
    save(path, state)
    return state
