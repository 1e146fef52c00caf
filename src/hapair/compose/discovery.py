"""Pure parsers of what discovery reads: `docker compose config --format json` (or a compose
file loaded offline), `docker compose ps --format json`, `docker inspect`, `docker compose ls`,
and the version probes run inside the containers. No I/O here (collect.py runs the commands).

Every parser takes text or loaded data and raises ValueError with a one-line problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hapair.compose import normalize as n
from hapair.compose.model import (
    Container,
    Network,
    Project,
    Redactor,
    Service,
    Volume,
    parse_duration,
)
from hapair.facts.probes import parse_pg_major

_PROJECT_NAME = re.compile(r"[^a-z0-9_-]")

# --- docker compose config -------------------------------------------------------------------


def parse_config_json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"`config --format json` output is not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ValueError("`config --format json` output has no services mapping")
    return data


def project_name(raw: str) -> str:
    """Compose's normalisation of a project name: lowercase, only [a-z0-9_-]."""
    return _PROJECT_NAME.sub("", raw.lower()).lstrip("_-")


def secret_environments(raw: Mapping[str, Any]) -> list[dict[str, str | None]]:
    """The environment of every service (to build a Redactor before anything is parsed)."""
    return [
        n.parse_environment((svc or {}).get("environment"))
        for svc in (raw.get("services") or {}).values()
    ]


def parse_project(
    raw: Mapping[str, Any],
    *,
    name: str | None = None,
    redactor: Redactor,
    base_dir: str | None = None,
    escaped_dollars: bool = False,
) -> Project:
    """A loaded compose document (long or short syntax) → Project.

    `escaped_dollars`: `docker compose config` writes every literal "$" as "$$" so its output
    can be read again; undo that so both discovery paths give the same strings."""
    proj = project_name(name or str(raw.get("name") or ""))
    if not proj:
        raise ValueError("no project name (give --project)")
    services = {}
    for svc_name, svc in (raw.get("services") or {}).items():
        try:
            services[str(svc_name)] = _service(str(svc_name), svc or {}, redactor, base_dir)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"services.{svc_name}: {exc}") from None
    if escaped_dollars:
        services = {k: _unescape_service(s) for k, s in services.items()}
    return Project(
        name=proj,
        services=services,
        volumes=_volumes(proj, raw.get("volumes") or {}),
        networks=_networks(proj, raw.get("networks") or {}, services),
    )


def _service(name: str, raw: Mapping[str, Any], red: Redactor, base_dir: str | None) -> Service:
    env = n.parse_environment(raw.get("environment"))
    command = n.parse_command(raw.get("command"))
    entrypoint = n.parse_command(raw.get("entrypoint"))
    health = n.parse_healthcheck(raw.get("healthcheck"))
    return Service(
        name=name,
        image=n.as_str(raw["image"]) if raw.get("image") else None,
        build=raw.get("build") is not None,
        command=_red_words(command, red),
        entrypoint=_red_words(entrypoint, red),
        environment={k: red.env_value(k, v) for k, v in env.items()},
        env_files=n.parse_env_files(raw.get("env_file")),
        ports=n.parse_ports(raw.get("ports")),
        expose=n.parse_str_list(raw.get("expose"), "expose"),
        mounts=n.parse_mounts(raw.get("volumes"), base_dir),
        networks=n.parse_networks(raw.get("networks")),
        network_mode=n.as_str(raw["network_mode"]) if raw.get("network_mode") else None,
        restart=n.as_str(raw["restart"]) if raw.get("restart") is not None else None,
        healthcheck=_red_words(health, red),
        stop_grace_period_s=parse_duration(raw.get("stop_grace_period")),
        profiles=n.parse_str_list(raw.get("profiles"), "profiles"),
        depends_on=n.parse_depends_on(raw.get("depends_on")),
        working_dir=n.as_str(raw["working_dir"]) if raw.get("working_dir") else None,
        user=n.as_str(raw["user"]) if raw.get("user") is not None else None,
        cap_add=n.parse_str_list(raw.get("cap_add"), "cap_add"),
    )


def _red_words(words: tuple[str, ...] | None, red: Redactor) -> tuple[str, ...] | None:
    return None if words is None else tuple(red.text(w) for w in words)


def _unescape_service(s: Service) -> Service:
    def words(w: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if w is None else tuple(x.replace("$$", "$") for x in w)

    return replace(
        s,
        command=words(s.command),
        entrypoint=words(s.entrypoint),
        healthcheck=words(s.healthcheck),
        environment={
            k: v.replace("$$", "$") if v else v for k, v in s.environment.items()
        },
    )


def _volumes(project: str, raw: Mapping[str, Any]) -> dict[str, Volume]:
    out = {}
    for key, opts in raw.items():
        opts = opts or {}
        external = opts.get("external")
        is_external = bool(external)
        # compose file format 2/3 spelled it `external: {name: …}`
        legacy = external.get("name") if isinstance(external, Mapping) else None
        default = str(key) if is_external else f"{project}_{key}"
        real = n.as_str(opts.get("name") or legacy or default)
        out[str(key)] = Volume(str(key), real, is_external, opts.get("driver"))
    return out


def _networks(
    project: str, raw: Mapping[str, Any], services: Mapping[str, Service]
) -> dict[str, Network]:
    out = {}
    for key, opts in raw.items():
        opts = opts or {}
        external = opts.get("external")
        is_external = bool(external)
        legacy = external.get("name") if isinstance(external, Mapping) else None
        default = str(key) if is_external else f"{project}_{key}"
        subnets = tuple(
            n.as_str(c["subnet"])
            for c in ((opts.get("ipam") or {}).get("config") or [])
            if isinstance(c, Mapping) and c.get("subnet")
        )
        out[str(key)] = Network(
            str(key), n.as_str(opts.get("name") or legacy or default),
            opts.get("driver"), is_external, subnets,
        )
    # services without `networks:` (and without network_mode) join the implicit "default"
    if any(not s.networks and not s.network_mode for s in services.values()):
        out.setdefault("default", Network("default", f"{project}_default", "bridge"))
    return out


# --- docker compose ps / docker inspect --------------------------------------------------------


@dataclass(frozen=True)
class PsEntry:
    id: str
    name: str
    service: str
    state: str
    health: str
    exit_code: int | None


def parse_ps(text: str) -> list[PsEntry]:
    """`ps --format json`: a JSON array (compose < 2.21) or one object per line (newer)."""
    text = text.strip()
    if not text:
        return []
    try:
        rows = json.loads(text) if text.startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()
        ]
    except json.JSONDecodeError as exc:
        raise ValueError(f"`ps --format json` output is not JSON: {exc.msg}") from None
    out = []
    for row in rows:
        if not isinstance(row, Mapping) or "Service" not in row:
            raise ValueError(f"`ps --format json`: unexpected entry {str(row)[:80]!r}")
        exit_code = row.get("ExitCode")
        out.append(
            PsEntry(
                id=str(row.get("ID", "")),
                name=str(row.get("Name") or row.get("Names") or ""),
                service=str(row["Service"]),
                state=str(row.get("State", "")).lower(),
                health=str(row.get("Health") or "").lower(),
                exit_code=int(exit_code) if isinstance(exit_code, int) else None,
            )
        )
    return out


@dataclass(frozen=True)
class Inspected:
    """One `docker inspect` entry: the container plus its compose labels."""

    service: str
    project: str
    container: Container
    config_files: tuple[str, ...] = ()
    working_dir: str | None = None
    env_files: tuple[str, ...] = ()
    oneoff: bool = False


LABEL = "com.docker.compose."


def parse_inspect(text: str, redactor: Redactor | None = None) -> list[Inspected]:
    """`docker inspect ID…` (a JSON array). Container env values are redacted."""
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"`docker inspect` output is not JSON: {exc.msg}") from None
    if not isinstance(rows, list):
        raise ValueError("`docker inspect` output is not a JSON array")
    return [_inspected(row, redactor) for row in rows]


def inspect_environments(text: str) -> list[dict[str, str | None]]:
    """The raw Config.Env of each container (only to build a Redactor)."""
    rows = json.loads(text)
    return [n.parse_environment((r.get("Config") or {}).get("Env") or []) for r in rows]


def _inspected(row: Mapping[str, Any], redactor: Redactor | None) -> Inspected:
    red = redactor or Redactor()
    config = row.get("Config") or {}
    labels = config.get("Labels") or {}
    state = row.get("State") or {}
    host = row.get("HostConfig") or {}
    env = n.parse_environment(config.get("Env") or [])
    volumes = tuple(
        (str(m.get("Name", "")), str(m.get("Destination", "")))
        for m in row.get("Mounts") or []
        if m.get("Type") == "volume"
    )
    networks = ((row.get("NetworkSettings") or {}).get("Networks") or {}).items()
    container = Container(
        name=str(row.get("Name", "")).lstrip("/"),
        id=str(row.get("Id", ""))[:12],
        state=str(state.get("Status", "")).lower(),
        health=str((state.get("Health") or {}).get("Status") or "").lower(),
        exit_code=state.get("ExitCode") if isinstance(state.get("ExitCode"), int) else None,
        restart_count=int(row.get("RestartCount") or 0),
        restart_policy=str((host.get("RestartPolicy") or {}).get("Name") or ""),
        volumes=volumes,
        addresses=tuple((str(k), str((v or {}).get("IPAddress") or "")) for k, v in networks),
        env={k: red.env_value(k, v) or "" for k, v in env.items()},
    )
    return Inspected(
        service=str(labels.get(LABEL + "service", "")),
        project=str(labels.get(LABEL + "project", "")),
        container=container,
        config_files=_split_labels(labels.get(LABEL + "project.config_files")),
        working_dir=labels.get(LABEL + "project.working_dir"),
        env_files=_split_labels(labels.get(LABEL + "project.environment_file")),
        oneoff=str(labels.get(LABEL + "oneoff", "False")).lower() == "true",
    )


def _split_labels(value: Any) -> tuple[str, ...]:
    return tuple(p for p in str(value or "").split(",") if p)


def attach_containers(project: Project, found: Sequence[Inspected]) -> Project:
    """The project with each service's (non one-off) containers filled in."""
    by_service: dict[str, list[Container]] = {}
    for item in found:
        if item.project == project.name and not item.oneoff:
            by_service.setdefault(item.service, []).append(item.container)
    services = {
        name: replace(s, containers=tuple(by_service.get(name, ())))
        for name, s in project.services.items()
    }
    return replace(project, services=services)


# --- docker compose ls / versions ----------------------------------------------------------------


@dataclass(frozen=True)
class LsEntry:
    name: str
    status: str
    config_files: tuple[str, ...]


def parse_compose_ls(text: str) -> list[LsEntry]:
    """`docker compose ls --all --format json`."""
    try:
        rows = json.loads(text or "[]")
    except json.JSONDecodeError as exc:
        raise ValueError(f"`compose ls` output is not JSON: {exc.msg}") from None
    return [
        LsEntry(str(r["Name"]), str(r.get("Status", "")), _split_labels(r.get("ConfigFiles")))
        for r in rows
    ]


def parse_pg_binary_version(text: str) -> tuple[int, str] | None:
    """`postgres --version` → (major, "17.2")."""
    major = parse_pg_major(text)
    m = re.search(r"\(PostgreSQL\)\s+(\S+)", text)
    return (major, m.group(1)) if major is not None and m else None


def parse_pg_data_version(text: str) -> int | None:
    """The content of PGDATA/PG_VERSION → the data directory's major."""
    value = text.strip()
    return int(value) if value.isdigit() else None


def parse_redis_version(text: str) -> str | None:
    """`redis-server --version` → "7.2.4"."""
    m = re.search(r"\bv=(\d+\.\d+(?:\.\d+)?)", text)
    return m.group(1) if m else None
