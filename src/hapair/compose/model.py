"""The discovered model of a Docker Compose stack: what `hapair init` found, as frozen data.

The same model comes out of both discovery paths — over SSH (`docker compose config --format
json`, `ps`, `inspect`) and offline (the user's YAML and env files) — so everything above it
(classification, findings, the inventory draft, generated files, invariants) has one input.

Secrets never enter the model: environment values under secret-looking keys, passwords inside
URLs and every known secret value found elsewhere (commands, healthchecks) are replaced by
"***" while parsing (see `Redactor`), so `to_dict()` and `-o json` are safe by construction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

REDACTED = "***"
ALL_ADDRESSES = ("", "0.0.0.0", "::", "[::]")

Source = Literal["ssh", "offline"]


# --- durations -------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(value: object) -> float | None:
    """Compose durations ("60s", "1m30s", Go's "1m0s", a bare number = seconds) → seconds.

    None for a missing value; ValueError for text that is not a duration."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{value!r} is not a duration (e.g. 60s, 1m30s)")
    return sum(float(n) * _UNITS[u] for n, u in parts)


# --- redaction -------------------------------------------------------------------------------

_SECRET_KEY = re.compile(
    r"PASS|SECRET|TOKEN|PRIVATE|CREDENTIAL|API_?KEY|ACCESS_?KEY|ROOT_USER|AUTH|SALT", re.I
)
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)(?P<pw>[^@\s/]+)@")
_MIN_SECRET_LEN = 4  # shorter values ("0", "yes") would redact unrelated text


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


class Redactor:
    """Replaces known secret values (and URL passwords) by "***". Holds the values; its repr
    does not show them."""

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values = sorted(
            {v for v in values if len(v) >= _MIN_SECRET_LEN}, key=len, reverse=True
        )

    @classmethod
    def from_environments(cls, envs: Iterable[Mapping[str, object]]) -> Redactor:
        """Every value under a secret-looking key of any of these environments."""
        return cls(
            str(v) for env in envs for k, v in env.items() if v is not None and is_secret_key(k)
        )

    def text(self, value: str) -> str:
        for secret in self._values:
            value = value.replace(secret, REDACTED)
        return _URL_PASSWORD.sub(lambda m: m["head"] + REDACTED + "@", value)

    def env_value(self, key: str, value: str | None) -> str | None:
        if value is None:
            return None
        return REDACTED if is_secret_key(key) and value else self.text(value)

    def __repr__(self) -> str:
        return f"Redactor({len(self._values)} values)"


# --- one service -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PortBinding:
    """One entry of `ports:` (always published: without a host port Docker picks one)."""

    target: int
    published: str = ""  # the host port; "" = a random one
    host_ip: str = ""  # "" = every address of the host
    protocol: str = "tcp"

    @property
    def on_all_addresses(self) -> bool:
        return self.host_ip in ALL_ADDRESSES

    def short(self) -> str:
        ip = self.host_ip or "0.0.0.0"
        ip = f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip
        return f"{ip}:{self.published}:{self.target}/{self.protocol}"


@dataclass(frozen=True)
class Mount:
    type: str  # volume | bind | tmpfs
    target: str
    source: str = ""  # a top-level volume key, or a host path; "" = anonymous volume
    read_only: bool = False


@dataclass(frozen=True)
class NetworkAttachment:
    name: str  # the top-level network key
    ipv4_address: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Container:
    """A container of the service as `ps`/`inspect` saw it (SSH discovery only)."""

    name: str
    id: str = ""
    state: str = ""  # running | exited | restarting | created | paused | dead
    health: str = ""  # healthy | unhealthy | starting | ""
    exit_code: int | None = None
    restart_count: int = 0
    restart_policy: str = ""
    volumes: tuple[tuple[str, str], ...] = ()  # (real volume name, mount point)
    addresses: tuple[tuple[str, str], ...] = ()  # (real network name, IPv4)
    env: Mapping[str, str] = field(default_factory=dict)  # redacted


@dataclass(frozen=True)
class Service:
    name: str
    image: str | None = None
    build: bool = False
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: Mapping[str, str | None] = field(default_factory=dict)  # redacted
    env_files: tuple[str, ...] = ()
    ports: tuple[PortBinding, ...] = ()
    expose: tuple[str, ...] = ()
    mounts: tuple[Mount, ...] = ()
    networks: tuple[NetworkAttachment, ...] = ()
    network_mode: str | None = None
    restart: str | None = None
    healthcheck: tuple[str, ...] | None = None  # the test, e.g. ("CMD", "curl", …)
    stop_grace_period_s: float | None = None
    profiles: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    working_dir: str | None = None
    user: str | None = None
    cap_add: tuple[str, ...] = ()
    containers: tuple[Container, ...] = ()

    @property
    def command_text(self) -> str:
        """Entrypoint and command as one line (what the classifier reads)."""
        return " ".join((*(self.entrypoint or ()), *(self.command or ())))

    def mount_at(self, target: str) -> Mount | None:
        """The mount holding `target` (the longest mount point that contains it)."""
        best = None
        for m in self.mounts:
            inside = target == m.target or target.startswith(m.target.rstrip("/") + "/")
            if inside and (best is None or len(m.target) > len(best.target)):
                best = m
        return best


@dataclass(frozen=True)
class Volume:
    key: str  # the name in the compose file
    name: str  # the real Docker volume name (project-prefixed unless `name:`/external)
    external: bool = False
    driver: str | None = None


@dataclass(frozen=True)
class Network:
    key: str
    name: str
    driver: str | None = None
    external: bool = False
    subnets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Project:
    """`docker compose config` of one project, parsed."""

    name: str
    services: Mapping[str, Service]
    volumes: Mapping[str, Volume] = field(default_factory=dict)
    networks: Mapping[str, Network] = field(default_factory=dict)

    def volume_name(self, key: str) -> str:
        vol = self.volumes.get(key)
        return vol.name if vol else f"{self.name}_{key}"


# --- what discovery concluded ----------------------------------------------------------------

Role = Literal[
    "postgres", "redis", "storage", "storage_setup", "backend", "frontend", "worker",
    "scheduler", "http_lb",
]
ROLES: tuple[Role, ...] = (
    "postgres", "redis", "storage", "storage_setup", "backend", "frontend", "worker",
    "scheduler", "http_lb",
)
SINGLE_ROLES: tuple[Role, ...] = tuple(r for r in ROLES if r != "worker")


@dataclass(frozen=True)
class RoleMatch:
    role: Role
    service: str
    reason: str  # one line: why this service has this role


@dataclass(frozen=True)
class Undecided:
    role: Role
    candidates: tuple[str, ...]  # more than one service matched a one-service role


@dataclass(frozen=True)
class VersionFact:
    component: str  # postgres | redis | storage
    value: str  # "17", "17.2", "7.2-alpine", "RELEASE.2024-…"
    major: int | None
    source: str  # "data directory" | "server binary" | "image tag"
    verified: bool  # read from the running server, not guessed from a tag
    detail: str = ""


@dataclass(frozen=True)
class Finding:
    code: str  # stable, e.g. "public-data-port"
    service: str | None
    message: str  # one line
    defect: int | None = None  # the ORIGINAL_DEFECTS.md item it is
    severity: Literal["danger", "warning", "info"] = "warning"


@dataclass(frozen=True)
class Stack:
    """Everything `hapair init` discovered about one single-node stack."""

    source: Source
    project: Project
    files: tuple[str, ...]
    env_files: tuple[str, ...]
    host: str | None = None
    cli: str | None = None  # "docker compose" | "docker-compose" (SSH only)
    roles: tuple[RoleMatch, ...] = ()
    undecided: tuple[Undecided, ...] = ()
    versions: Mapping[str, VersionFact] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    migrate_on_start: tuple[str, ...] = ()  # services running `migrate` in their command

    def service_for(self, role: Role) -> Service | None:
        """The one service with this role (None when absent or undecided)."""
        for match in self.roles:
            if match.role == role:
                return self.project.services[match.service]
        return None

    def services_for(self, role: Role) -> tuple[Service, ...]:
        return tuple(self.project.services[m.service] for m in self.roles if m.role == role)

    def role_of(self, service: str) -> Role | None:
        return next((m.role for m in self.roles if m.service == service), None)

    @property
    def unassigned(self) -> tuple[str, ...]:
        taken = {m.service for m in self.roles}
        return tuple(s for s in self.project.services if s not in taken)

    def to_dict(self) -> dict[str, Any]:
        """The discovered model as plain JSON data (already redacted)."""
        return {
            "source": self.source,
            "host": self.host,
            "cli": self.cli,
            "project": self.project.name,
            "files": list(self.files),
            "env_files": list(self.env_files),
            "roles": {m.role: m.service for m in self.roles if m.role != "worker"}
            | {"worker": [m.service for m in self.roles if m.role == "worker"]},
            "role_reasons": [_plain(m) for m in self.roles],
            "undecided": [_plain(u) for u in self.undecided],
            "unassigned": list(self.unassigned),
            "migrate_on_start": list(self.migrate_on_start),
            "versions": {k: _plain(v) for k, v in self.versions.items()},
            "findings": [_plain(f) for f in self.findings],
            "services": {name: _plain(s) for name, s in self.project.services.items()},
            "volumes": {k: _plain(v) for k, v in self.project.volumes.items()},
            "networks": {k: _plain(v) for k, v in self.project.networks.items()},
        }


def _plain(value: Any) -> Any:
    """Dataclasses, tuples and mappings → JSON-able dicts and lists (field order kept)."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
