"""What is wrong, or needs care, in the stack as found (pure). Each finding is one line that
names the service and, where it is one, the ORIGINAL_DEFECTS.md item it repeats; `plan`
and the inventory draft show them, and the generated files are built not to repeat them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from hapair.compose.classify import (
    data_mount,
    embeds_beat,
    image_tag,
    pgdata,
    runs_migrate,
)
from hapair.compose.model import Finding, Project, RoleMatch, Service, VersionFact

DATA_ROLES = ("postgres", "redis", "storage")
MIN_PG_STOP_GRACE_S = 60.0
RESURRECTING = ("always", "unless-stopped")


def findings(
    project: Project,
    roles: Sequence[RoleMatch],
    versions: Mapping[str, VersionFact],
    unset: Iterable[str] = (),
) -> tuple[Finding, ...]:
    by_role = {m.role: project.services[m.service] for m in roles if m.role != "worker"}
    out: list[Finding] = []
    for match in roles:
        if match.role in DATA_ROLES:
            out += _public_ports(project.services[match.service])
    if pg := by_role.get("postgres"):
        out += _postgres(pg, versions.get("postgres"))
    if redis := by_role.get("redis"):
        out += _redis(redis)
    out += _static_addresses(project.services.values())
    for svc in sorted(project.services.values(), key=lambda s: s.name):
        if runs_migrate(svc):
            out.append(Finding(
                "migrate-on-start", svc.name,
                f"{svc.name} runs `migrate` every time its container starts: with two nodes "
                "both would migrate at once, and against an empty database it would create a "
                "fresh schema; hapair moves it to a one-shot `migrate` service", defect=24))
        if embeds_beat(svc):
            out.append(Finding(
                "embedded-scheduler", svc.name,
                f"{svc.name} runs Celery beat inside the worker (-B): on two nodes that is two "
                "schedulers; split beat into its own service"))
    if sched := by_role.get("scheduler"):
        out.append(Finding(
            "scheduler-singleton", sched.name,
            f"{sched.name} (Celery beat) must run on exactly one node: hapair keeps it on "
            "node1 and moves it on failover", severity="info"))
    for name in unset:
        out.append(Finding(
            "unset-variable", None,
            f"${{{name}}} is used without a value in the env files given: compose would "
            "substitute an empty string", defect=6))
    out += _unverified(versions)
    return tuple(out)


def _public_ports(svc: Service) -> list[Finding]:
    return [
        Finding(
            "public-data-port", svc.name,
            f"{svc.name} publishes port {p.target} on every address of the host "
            f"({p.short()}): reachable from any network the host is on; hapair binds data "
            "ports to the private address", defect=26, severity="danger")
        for p in svc.ports
        if p.on_all_addresses
    ]


def _static_addresses(services: Iterable[Service]) -> list[Finding]:
    fixed = [f"{s.name} {n.ipv4_address}" for s in sorted(services, key=lambda s: s.name)
             for n in s.networks if n.ipv4_address]
    if not fixed:
        return []
    return [Finding(
        "bridge-address", None,
        f"fixed Docker-bridge addresses ({', '.join(fixed)}) exist only on this host: the "
        "other node never uses them; cross-host traffic goes to the hosts' private addresses",
        defect=1, severity="info")]


def _postgres(pg: Service, version: VersionFact | None) -> list[Finding]:
    out = []
    if pg.restart in RESURRECTING:
        out.append(Finding(
            "pg-restart-resurrects", pg.name,
            f"{pg.name} has `restart: {pg.restart}`: after a crash or a Docker restart it comes "
            "back as a writable primary, even when the other node has been promoted; under HA "
            "only Patroni starts PostgreSQL", defect=16, severity="danger"))
    grace = pg.stop_grace_period_s
    if grace is None or grace < MIN_PG_STOP_GRACE_S:
        shown = "Docker's default 10 s" if grace is None else f"{grace:g} s"
        out.append(Finding(
            "pg-stop-grace", pg.name,
            f"{pg.name} stops with {shown} before SIGKILL: a busy PostgreSQL may not finish a "
            "clean shutdown; hapair sets stop_grace_period to 120s"))
    mount = data_mount(pg, pgdata(pg))
    if mount is None or mount.type != "volume" or not mount.source:
        where = "inside the container" if mount is None else f"on a {mount.type or 'anonymous'}"
        if mount is not None and mount.type == "volume" and not mount.source:
            where = "on an anonymous volume"
        out.append(Finding(
            "pg-data-not-named", pg.name,
            f"{pg.name} keeps {pgdata(pg)} {where}: a recreated container could start an EMPTY "
            "database; move the data to a named volume before the upgrade", defect=3,
            severity="danger" if mount is None or not mount.source else "warning"))
    tag = image_tag(pg.image)
    if version and version.verified and version.major is not None:
        tag_major = _major(tag)
        if tag_major is not None and tag_major != version.major:
            out.append(Finding(
                "pg-tag-mismatch", pg.name,
                f"{pg.name}'s image tag says {tag_major} but the server runs {version.major}: "
                f"hapair uses {version.major} for the standby", defect=4))
    if tag in (None, "latest"):
        out.append(Finding(
            "unpinned-image", pg.name,
            f"{pg.name} uses {pg.image!r} without a version tag: a pull could change the major "
            "version under the data directory"))
    return out


def _redis(redis: Service) -> list[Finding]:
    text = redis.command_text
    out = []
    if re.search(r"/tmp/\S*\.conf|>\s*\S+\.conf", text):
        out.append(Finding(
            "redis-generated-config", redis.name,
            f"{redis.name} writes its config at start from the command line (e.g. "
            "/tmp/redis.conf): not kept, not writable by Sentinel; hapair renders a persistent, "
            "writable config", defect=5))
    if re.search(r"protected-mode\s+no", text):
        out.append(Finding(
            "redis-protected-mode-off", redis.name,
            f"{redis.name} turns protected-mode off", defect=26))
    return out


def _unverified(versions: Mapping[str, VersionFact]) -> list[Finding]:
    return [
        Finding(
            "version-unverified", None,
            f"{v.component} {v.value}: {v.detail or 'from the image tag'} (not read from a "
            "running server; run `hapair init --host` to verify)", severity="info")
        for v in versions.values()
        if not v.verified
    ]


def _major(tag: str | None) -> int | None:
    m = re.match(r"(\d+)", tag or "")
    return int(m.group(1)) if m else None
