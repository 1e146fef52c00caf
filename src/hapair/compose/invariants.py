"""Our own invariant checks on compose files — the generated ones and the user's edited ones
(pure). `docker compose config` says a file is valid compose; these say it is SAFE:

- public-data-port     no data service publishes a port on every address (0.0.0.0 / ::)
- port-not-private     in generated files, every published port is on the host's private address
- resurrecting-restart no restart policy can bring PostgreSQL back on its own as a primary:
                       plain PostgreSQL (not under Patroni) must not have `always` or
                       `unless-stopped`; Patroni must not have `always` (the rule is
                       generate.RESTART_RULE)
- pg-stop-grace        stop_grace_period >= 60 s wherever PostgreSQL runs
- volume-replaced      the PostgreSQL data volume is the existing one (same real name), declared
                       external so compose can never create an empty one in its place
- shared-data-volume   no two services that start by default mount the same PostgreSQL volume
- patroni-entrypoint   Patroni's entrypoint is set (the image's would initdb an empty volume)
- sentinel-config      Sentinel's config file is on a writable, persistent mount
- sentinel-announce    Sentinel announces the private address and the published port
- keepalived-host      keepalived runs in the host's network with NET_ADMIN
- scheduler-once       across the two nodes, exactly one runs the scheduler by default
- migrate-on-start     no service that starts by default runs `migrate`
Each violation is one line naming the service and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hapair.compose.classify import runs_migrate
from hapair.compose.discovery import parse_project
from hapair.compose.model import Project, Redactor, Service
from hapair.compose.yamlio import load_plain

MIN_STOP_GRACE_S = 60.0


@dataclass(frozen=True)
class Violation:
    rule: str
    service: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.service or '-'}: {self.rule}: {self.reason}"


@dataclass(frozen=True)
class Expect:
    """What a file must satisfy. Service names are those of the file."""

    private_address: str | None = None  # generated files: every port bound here
    data_services: frozenset[str] = frozenset()
    postgres: frozenset[str] = frozenset()  # plain PostgreSQL (the user's service)
    patroni: frozenset[str] = frozenset()
    sentinels: frozenset[str] = frozenset()
    keepalived: frozenset[str] = frozenset()
    # Patroni/PostgreSQL service → the real name of the data volume it must reuse
    data_volumes: Mapping[str, str] = field(default_factory=dict)


def load_project(text: str, project: str, base_dir: str | None = None) -> Project:
    return parse_project(load_plain(text), name=project, redactor=Redactor(), base_dir=base_dir)


def check(project: Project, expect: Expect) -> list[Violation]:
    out: list[Violation] = []
    for name, svc in project.services.items():
        out += _ports(svc, expect)
        if name in expect.postgres or name in expect.patroni:
            out += _postgres(svc, name in expect.patroni)
        if name in expect.sentinels:
            out += _sentinel(svc)
        if name in expect.keepalived:
            out += _keepalived(svc)
        if runs_migrate(svc) and not svc.profiles:
            out.append(Violation("migrate-on-start", name,
                                 "runs `migrate` at every start; use the `migrate` profile"))
    out += _volumes(project, expect)
    return out


def _ports(svc: Service, expect: Expect) -> list[Violation]:
    out = []
    for port in svc.ports:
        if svc.name in expect.data_services and port.on_all_addresses:
            out.append(Violation("public-data-port", svc.name,
                                 f"{port.short()} is published on every address"))
        elif expect.private_address and port.host_ip != expect.private_address:
            out.append(Violation("port-not-private", svc.name,
                                 f"{port.short()} is not bound to {expect.private_address}"))
    return out


def _postgres(svc: Service, patroni: bool) -> list[Violation]:
    out = []
    if patroni and svc.restart == "always":
        out.append(Violation("resurrecting-restart", svc.name,
                             "`restart: always` restarts a Patroni an operator stopped on "
                             "purpose; use unless-stopped"))
    if not patroni and svc.restart in ("always", "unless-stopped") and not svc.profiles:
        out.append(Violation("resurrecting-restart", svc.name,
                             f"`restart: {svc.restart}` brings plain PostgreSQL back as a "
                             "writable primary; only Patroni may start it"))
    if not patroni and svc.restart in ("always", "unless-stopped") and svc.profiles:
        out.append(Violation("resurrecting-restart", svc.name,
                             f"`restart: {svc.restart}` on a service kept for rollback: a "
                             "Docker restart could start it beside Patroni; use \"no\""))
    grace = svc.stop_grace_period_s
    if grace is None or grace < MIN_STOP_GRACE_S:
        shown = "the default 10 s" if grace is None else f"{grace:g} s"
        out.append(Violation("pg-stop-grace", svc.name,
                             f"stops after {shown}; PostgreSQL needs >= 60 s to shut down "
                             "cleanly"))
    if patroni and not svc.entrypoint:
        out.append(Violation("patroni-entrypoint", svc.name,
                             "no entrypoint: the image's would initdb an empty volume"))
    return out


_SENTINEL_CONF = re.compile(r"(\S+\.conf)\s+--sentinel\b")


def _sentinel(svc: Service) -> list[Violation]:
    m = _SENTINEL_CONF.search(svc.command_text)
    if not m:
        return [Violation("sentinel-config", svc.name, "no `CONFIG --sentinel` in its command")]
    path = m.group(1)
    mount = svc.mount_at(path)
    if mount is None:
        return [Violation("sentinel-config", svc.name,
                          f"{path} is inside the container: lost when it is recreated")]
    if mount.read_only:
        return [Violation("sentinel-config", svc.name,
                          f"{path} is on a read-only mount: Sentinel cannot rewrite it")]
    if mount.type == "bind" and mount.target == path:
        return [Violation("sentinel-config", svc.name,
                          f"{path} is a bind-mounted file: Sentinel's rewrite (a rename in "
                          "its directory) fails on it")]
    return []


def _keepalived(svc: Service) -> list[Violation]:
    if svc.network_mode != "host" or "NET_ADMIN" not in svc.cap_add:
        return [Violation("keepalived-host", svc.name,
                          "needs network_mode: host and cap_add NET_ADMIN to hold the VIP")]
    return []


def _volumes(project: Project, expect: Expect) -> list[Violation]:
    out = []
    for name, real in expect.data_volumes.items():
        svc = project.services.get(name)
        if svc is None:
            out.append(Violation("volume-replaced", name, "the service is missing"))
            continue
        keys = [m.source for m in svc.mounts if m.type == "volume" and m.source
                and project.volume_name(m.source) == real]
        if not keys:
            out.append(Violation("volume-replaced", name,
                                 f"does not mount the existing data volume {real}: it would "
                                 "start on an empty data directory"))
        elif not all(project.volumes.get(k) and project.volumes[k].external for k in keys):
            out.append(Violation("volume-replaced", name,
                                 f"volume {real} is not external: compose would create an "
                                 "empty one if it were missing"))
    # two default-started services on one PostgreSQL data volume = two postmasters
    users: dict[str, list[str]] = {}
    for name in expect.postgres | expect.patroni:
        svc = project.services.get(name)
        if svc is None or svc.profiles:
            continue
        for m in svc.mounts:
            if m.type == "volume" and m.source:
                users.setdefault(project.volume_name(m.source), []).append(name)
    for real, names in users.items():
        if len(names) > 1:
            out.append(Violation("shared-data-volume", ",".join(sorted(names)),
                                 f"both start by default on volume {real}"))
    return out


def check_sentinel_config(service: str, text: str, address: str, port: int) -> list[Violation]:
    """The rendered sentinel.conf announces what the other Sentinels can reach."""
    want = [f"sentinel announce-ip {address}", f"sentinel announce-port {port}"]
    missing = [w for w in want if not re.search(rf"(?m)^{re.escape(w)}$", text)]
    return [Violation("sentinel-announce", service, f"missing `{w}`") for w in missing]


def check_scheduler_once(active_by_node: Mapping[str, Iterable[str]], scheduler: str
                         ) -> list[Violation]:
    """`active_by_node`: node → services that start by default there."""
    running = sorted(n for n, services in active_by_node.items() if scheduler in services)
    if len(running) == 1:
        return []
    return [Violation("scheduler-once", scheduler,
                      f"starts by default on {len(running)} nodes ({', '.join(running) or 'none'})"
                      "; exactly one must run it")]


def active_services(project: Project) -> list[str]:
    """What `docker compose up -d` starts with no profile given."""
    return [name for name, s in project.services.items() if not s.profiles]
