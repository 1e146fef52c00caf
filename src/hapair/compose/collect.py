"""Discovery: build a Stack from a running host (over a Transport) or from local files.

Over SSH only read-only commands run, in this order:
  docker compose version                      (or docker-compose version: which CLI)
  docker ps -a --filter label=com.docker.compose.project[=P] --format {{.ID}}
  docker inspect ID…                          (labels: project, files, env files; mounts…)
  docker compose -p P -f F… --env-file E… config --format json    (v1: `config`, YAML)
  docker compose -p P -f F… --env-file E… ps -a --format json     (v2 only)
  docker exec PG postgres --version ; docker exec PG cat $PGDATA/PG_VERSION
  docker exec REDIS redis-server --version
Nothing is created, started, stopped or written on the host.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from hapair.compose.classify import classify, image_tag, pgdata, runs_migrate
from hapair.compose.discovery import (
    Inspected,
    attach_containers,
    inspect_environments,
    parse_config_json,
    parse_inspect,
    parse_pg_binary_version,
    parse_pg_data_version,
    parse_project,
    parse_ps,
    parse_redis_version,
    secret_environments,
)
from hapair.compose.findings import findings
from hapair.compose.model import (
    Container,
    Project,
    Redactor,
    RoleMatch,
    Stack,
    VersionFact,
)
from hapair.compose.offline import load_offline
from hapair.compose.runtime import V1, ComposeRuntime, detect_cli
from hapair.compose.yamlio import load_plain
from hapair.errors import CommandFailed, UsageError
from hapair.exec.transport import Transport

Progress = Callable[[str], None]
PROJECT_LABEL = "com.docker.compose.project"


def _quiet(_msg: str) -> None:
    pass


# --- offline ---------------------------------------------------------------------------------


def discover_offline(
    files: Sequence[Path], env_files: Sequence[Path] = (), project: str | None = None
) -> Stack:
    loaded = load_offline(files, env_files, project)
    redactor = Redactor.from_environments([loaded.variables, *secret_environments(loaded.raw)])
    try:
        proj = parse_project(loaded.raw, name=loaded.name, redactor=redactor,
                             base_dir=loaded.base_dir)
    except ValueError as exc:
        raise UsageError(f"{loaded.files[0]}: {exc}") from None
    return _conclude(
        Stack(source="offline", project=proj, files=loaded.files, env_files=loaded.env_files),
        versions_from_tags, loaded.unset,
    )


def _conclude(stack: Stack, versions_of: Callable[[Project, Sequence[RoleMatch]],
              dict[str, VersionFact]], unset: Sequence[str] = ()) -> Stack:
    roles, undecided = classify(stack.project)
    versions = versions_of(stack.project, roles)

    return replace(
        stack,
        roles=roles,
        undecided=undecided,
        versions=versions,
        findings=findings(stack.project, roles, versions, unset),
        migrate_on_start=tuple(s.name for s in stack.project.services.values()
                               if runs_migrate(s)),
    )


def versions_from_tags(project: Project, roles: Sequence[RoleMatch]) -> dict[str, VersionFact]:
    """Offline: what the image tags claim — marked unverified."""
    out = {}
    for match in roles:
        if match.role not in ("postgres", "redis", "storage"):
            continue
        image = project.services[match.service].image
        tag = image_tag(image)
        component = {"storage": "minio"}.get(match.role, match.role)
        out[match.role] = VersionFact(
            component=component,
            value=tag or "latest",
            major=_leading_int(tag),
            source="image tag",
            verified=False,
            detail=f"from the image tag {image}" if tag else f"{image} has no tag",
        )
    return out


def _leading_int(text: str | None) -> int | None:
    digits = ""
    for ch in text or "":
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else None


# --- over SSH --------------------------------------------------------------------------------


def discover_remote(
    transport: Transport,
    *,
    files: Sequence[str] = (),
    env_files: Sequence[str] = (),
    project: str | None = None,
    progress: Progress = _quiet,
) -> Stack:
    cli = detect_cli(transport)
    progress(f"{transport.name}: {' '.join(cli)} found")
    inspected, raw_envs = _inspect_project(transport, project)
    project, files, env_files = _locate(transport.name, inspected, project, files, env_files)
    progress(f"{transport.name}: project {project}, files {', '.join(files)}")
    runtime = ComposeRuntime(transport, project, files, env_files, cli=cli)
    raw, escaped, unset = _config(runtime)
    redactor = Redactor.from_environments([*secret_environments(raw), *raw_envs])
    try:
        proj = parse_project(raw, name=project, redactor=redactor,
                             base_dir=str(Path(files[0]).parent), escaped_dollars=escaped)
    except ValueError as exc:
        raise UsageError(f"{transport.name}: {exc}") from None
    inspected = [replace(i, container=_redact_container(i.container, redactor))
                 for i in inspected]
    proj = attach_containers(proj, inspected)
    if cli != V1:
        proj = _with_ps_states(proj, runtime)
    stack = Stack(source="ssh", project=proj, files=tuple(files), env_files=tuple(env_files),
                  host=transport.name, cli=" ".join(cli))
    return _conclude(stack, lambda p, r: versions_from_server(transport, p, r, progress), unset)


def _inspect_project(
    transport: Transport, project: str | None
) -> tuple[list[Inspected], list[dict[str, str | None]]]:
    """The compose containers (redacted) and their raw environments (only ever used to build
    the redactor for the config output, which repeats the same values)."""
    label = PROJECT_LABEL + (f"={project}" if project else "")
    ids = transport.run(
        ["docker", "ps", "-a", "--filter", f"label={label}", "--format", "{{.ID}}"],
        timeout=60.0,
    ).stdout.split()
    if not ids:
        what = f"project {project}" if project else "any compose project"
        raise UsageError(f"{transport.name}: no container of {what} (docker ps -a)")
    result = transport.run(["docker", "inspect", *ids], timeout=60.0)
    try:
        raw_envs = inspect_environments(result.stdout)
        return parse_inspect(result.stdout, Redactor.from_environments(raw_envs)), raw_envs
    except (ValueError, AttributeError) as exc:
        raise CommandFailed(transport.name, result.argv, 1, f"unreadable output: {exc}") from None


def _locate(
    host: str, inspected: Sequence[Inspected], project: str | None,
    files: Sequence[str], env_files: Sequence[str],
) -> tuple[str, list[str], list[str]]:
    """The project, its files and env files: as given, else from the containers' labels."""
    projects = sorted({i.project for i in inspected if i.project})
    if project is None:
        if len(projects) != 1:
            raise UsageError(
                f"{host}: {len(projects)} compose projects run here ({', '.join(projects)}); "
                "choose one with --project")
        project = projects[0]
    mine = [i for i in inspected if i.project == project and not i.oneoff]
    if not files:
        files = next((i.config_files for i in mine if i.config_files), ())
        if not files:
            raise UsageError(f"{host}: the containers do not say which compose files made "
                             "them; give --compose")
    if not env_files:
        env_files = next((i.env_files for i in mine if i.env_files), ())
    return project, list(files), list(env_files)


# `WARN[0000] The "X" variable is not set.` on a terminal; logfmt (`msg="The \"X\" …"`)
# without one, as over SSH
_UNSET = re.compile(r'The \\?"?([A-Za-z_][A-Za-z0-9_]*)\\?"? variable is not set')


def _config(runtime: ComposeRuntime) -> tuple[dict, bool, list[str]]:
    """The project as compose resolves it, whether "$" is escaped, and the variables compose
    warned were unset (a missing --env-file shows up here)."""
    if runtime.is_v1:
        result = runtime.transport.run(runtime.argv("config"), timeout=60.0)
        data, escaped = load_plain(result.stdout), False  # v1 prints YAML, "$" left as "$$"
    else:
        result = runtime.transport.run(runtime.argv("config", "--format", "json"), timeout=60.0)
        try:
            data, escaped = parse_config_json(result.stdout), True
        except ValueError as exc:
            raise UsageError(f"{runtime.transport.name}: {exc}") from None
    return data, escaped, list(dict.fromkeys(_UNSET.findall(result.stderr)))


def _with_ps_states(proj: Project, runtime: ComposeRuntime) -> Project:
    """Fill state and health from the compose CLI's own view (`ps -a --format json`)."""
    result = runtime.transport.run(runtime.argv("ps", "-a", "--format", "json"), timeout=60.0)
    try:
        by_name = {e.name: e for e in parse_ps(result.stdout)}
    except ValueError as exc:
        raise CommandFailed(result.host, result.argv, 1, str(exc)) from None
    services = {}
    for name, svc in proj.services.items():
        containers = tuple(
            replace(c, state=by_name[c.name].state, health=by_name[c.name].health)
            if c.name in by_name else c
            for c in svc.containers
        )
        services[name] = replace(svc, containers=containers)
    return replace(proj, services=services)


def _redact_container(c: Container, red: Redactor) -> Container:
    return replace(c, env={k: red.env_value(k, v) or "" for k, v in c.env.items()})


def _running(containers: Sequence[Container]) -> Container | None:
    return next((c for c in containers if c.state == "running"), None)


def versions_from_server(
    transport: Transport, project: Project, roles: Sequence[RoleMatch], progress: Progress
) -> dict[str, VersionFact]:
    """The versions the running containers report; the tag (unverified) where they cannot."""
    out = versions_from_tags(project, roles)
    by_role = {m.role: project.services[m.service] for m in roles}
    if (pg := by_role.get("postgres")) and (c := _running(pg.containers)):
        fact = _pg_version(transport, c, c.env.get("PGDATA") or pgdata(pg))
        if isinstance(fact, VersionFact):
            out["postgres"] = fact
            progress(f"{transport.name}: PostgreSQL {fact.value} ({fact.source})")
        elif "postgres" in out:
            out["postgres"] = replace(out["postgres"], detail=f"{out['postgres'].detail}; "
                                      f"the server did not say: {fact}")
    if (redis := by_role.get("redis")) and (c := _running(redis.containers)):
        result = transport.run(["docker", "exec", c.id or c.name, "redis-server", "--version"],
                               check=False, timeout=30.0)
        if result.ok and (version := parse_redis_version(result.stdout)):
            out["redis"] = VersionFact("redis", version, _leading_int(version),
                                       "server binary", True, "redis-server --version")
    return out


def _pg_version(transport: Transport, c: Container, data_dir: str) -> VersionFact | str:
    """The data directory's major (what a standby must match) and the binary's version; or
    why neither could be read."""
    ref = c.id or c.name
    binary = transport.run(["docker", "exec", ref, "postgres", "--version"], check=False,
                           timeout=30.0)
    data = transport.run(["docker", "exec", ref, "cat", f"{data_dir.rstrip('/')}/PG_VERSION"],
                         check=False, timeout=30.0)
    parsed = parse_pg_binary_version(binary.stdout) if binary.ok else None
    data_major = parse_pg_data_version(data.stdout) if data.ok else None
    if data_major is not None:
        full = f", server binary {parsed[1]}" if parsed else ""
        return VersionFact("postgres", parsed[1] if parsed else str(data_major), data_major,
                           "data directory", True,
                           f"{data_dir}/PG_VERSION says {data_major}{full}")
    if parsed is not None:
        return VersionFact("postgres", parsed[1], parsed[0], "server binary", True,
                           "postgres --version")
    tail = (binary.stderr.strip().splitlines() or [f"exit {binary.returncode}"])[-1]
    return f"`postgres --version`: {tail}"
