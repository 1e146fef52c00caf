"""Patroni probes: REST `/cluster`, `/patroni`, `/config` and `patronictl list -f json`.

Command builders return argv for running on a node (curl, patronictl); the controller may
fetch the same URLs itself. Parsers are pure and tolerate absent fields (a member whose
PostgreSQL is down has no lag); predicates return a Check with a one-line reason.
Sample outputs (Patroni 4.1.5) live in tests/unit/components/data/patroni/.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hapair.components.common import Check, curl_get_argv
from hapair.components.patroni.config import Durability, PatroniNode
from hapair.errors import StepFailed

LEADER_ROLES = frozenset({"leader", "primary", "master", "standby_leader"})


def rest_get_argv(node: PatroniNode, path: str, timeout_s: int = 3) -> list[str]:
    """GET a Patroni REST path from a host; split the output with split_curl_status."""
    return curl_get_argv(node.rest_url(path), timeout_s)


def patronictl_argv(config_path: str, *args: str, binary: str = "patronictl") -> list[str]:
    """patronictl reads the 0600 YAML: run it as the postgres user."""
    return [binary, "-c", config_path, *args]


def list_argv(config_path: str, binary: str = "patronictl") -> list[str]:
    return patronictl_argv(config_path, "list", "-f", "json", binary=binary)


def switchover_argv(config_path: str, leader: str, candidate: str,
                    binary: str = "patronictl") -> list[str]:
    return patronictl_argv(config_path, "switchover", "--leader", leader, "--candidate",
                           candidate, "--force", binary=binary)


@dataclass(frozen=True)
class Member:
    name: str
    role: str  # leader | replica | sync_standby | standby_leader | quorum_standby
    state: str  # running | streaming | stopped | starting | crashed | …
    host: str = ""
    port: int = 0
    timeline: int | None = None
    lag_bytes: int | None = None  # replay lag; None when unknown (not streaming)
    pending_restart: bool = False
    pending_reason: tuple[str, ...] = ()
    nosync: bool = False

    @property
    def is_leader(self) -> bool:
        return self.role in LEADER_ROLES


@dataclass(frozen=True)
class ClusterView:
    scope: str
    members: tuple[Member, ...]
    paused: bool = False

    def leader(self) -> Member | None:
        leaders = [m for m in self.members if m.is_leader]
        return leaders[0] if len(leaders) == 1 else None

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)


@dataclass(frozen=True)
class ReplicationPeer:
    application_name: str
    client_addr: str
    state: str
    sync_state: str


@dataclass(frozen=True)
class NodeStatus:
    """GET /patroni on one node."""

    name: str
    scope: str
    role: str  # primary | replica | standby_leader
    state: str
    timeline: int | None
    server_version: int
    pending_restart: bool
    pending_reason: tuple[str, ...]
    replication: tuple[ReplicationPeer, ...] = ()
    replication_state: str = ""  # a replica's own view: streaming | in archive recovery
    system_identifier: str = ""
    xlog: Mapping[str, object] = field(default_factory=dict)


def _json(text: str, what: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StepFailed(f"{what}: not JSON ({exc.msg})") from None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _reasons(raw: object) -> tuple[str, ...]:
    if isinstance(raw, Mapping):
        return tuple(
            f"{k}: {v.get('old_value', '')}->{v.get('new_value', '')}"
            if isinstance(v, Mapping) else str(k)
            for k, v in raw.items()
        )
    if isinstance(raw, str):
        return tuple(line.strip() for line in raw.splitlines() if line.strip())
    return ()


def parse_cluster(text: str) -> ClusterView:
    """GET /cluster."""
    data = _json(text, "patroni /cluster")
    if not isinstance(data, Mapping) or not isinstance(data.get("members"), list):
        raise StepFailed("patroni /cluster: expected an object with a members list")
    members = tuple(
        Member(
            name=str(m.get("name", "")),
            role=str(m.get("role", "")),
            state=str(m.get("state", "")),
            host=str(m.get("host", "")),
            port=int(m.get("port") or 0),
            timeline=_int_or_none(m.get("timeline")),
            lag_bytes=_int_or_none(m.get("replay_lag", m.get("lag"))),
            pending_restart=bool(m.get("pending_restart", False)),
            pending_reason=_reasons(m.get("pending_restart_reason")),
            nosync=bool((m.get("tags") or {}).get("nosync", False)),
        )
        for m in data["members"]
    )
    return ClusterView(str(data.get("scope", "")), members, paused=bool(data.get("pause")))


_LIST_ROLES = {"Leader": "leader", "Replica": "replica", "Sync Standby": "sync_standby",
               "Standby Leader": "standby_leader", "Quorum Standby": "quorum_standby"}


def parse_patronictl_list(text: str) -> ClusterView:
    """`patronictl list -f json` (lag there is in MB, rounded: kept only as 0 / not 0)."""
    data = _json(text, "patronictl list")
    if not isinstance(data, list):
        raise StepFailed("patronictl list: expected a JSON list")
    members = []
    for row in data:
        host, _, port = str(row.get("Host", "")).rpartition(":")
        lag_mb = row.get("Replay Lag", row.get("Lag in MB"))
        members.append(Member(
            name=str(row.get("Member", "")),
            role=_LIST_ROLES.get(str(row.get("Role", "")), str(row.get("Role", "")).lower()),
            state=str(row.get("State", "")),
            host=host,
            port=int(port) if port.isdigit() else 0,
            timeline=_int_or_none(row.get("TL")),
            lag_bytes=lag_mb * 1024 * 1024 if _int_or_none(lag_mb) is not None else None,
            pending_restart=row.get("Pending restart") == "*",
            pending_reason=_reasons(row.get("Pending restart reason")),
            nosync=bool((row.get("Tags") or {}).get("nosync", False)),
        ))
    scope = str(data[0].get("Cluster", "")) if data else ""
    return ClusterView(scope, tuple(members))


def parse_node_status(text: str) -> NodeStatus:
    """GET /patroni."""
    data = _json(text, "patroni /patroni")
    if not isinstance(data, Mapping):
        raise StepFailed("patroni /patroni: expected an object")
    meta = data.get("patroni") or {}
    return NodeStatus(
        name=str(meta.get("name", "")),
        scope=str(meta.get("scope", "")),
        role=str(data.get("role", "")),
        state=str(data.get("state", "")),
        timeline=_int_or_none(data.get("timeline")),
        server_version=int(data.get("server_version") or 0),
        pending_restart=bool(data.get("pending_restart", False)),
        pending_reason=_reasons(data.get("pending_restart_reason")),
        replication=tuple(
            ReplicationPeer(str(r.get("application_name", "")), str(r.get("client_addr", "")),
                            str(r.get("state", "")), str(r.get("sync_state", "")))
            for r in data.get("replication") or ()
        ),
        replication_state=str(data.get("replication_state", "")),
        system_identifier=str(data.get("database_system_identifier", "")),
        xlog=dict(data.get("xlog") or {}),
    )


def parse_config(text: str) -> dict[str, object]:
    data = _json(text, "patroni /config")
    if not isinstance(data, dict):
        raise StepFailed("patroni /config: expected an object")
    return data


def config_drift(desired: Mapping[str, object], observed: Mapping[str, object],
                 prefix: str = "") -> list[str]:
    """Keys of the desired dynamic config that /config does not match ('a.b: x != y')."""
    out: list[str] = []
    for key, want in desired.items():
        have = observed.get(key)
        path = f"{prefix}{key}"
        if isinstance(want, Mapping):
            out += config_drift(want, have if isinstance(have, Mapping) else {}, path + ".")
        elif str(have).lower() != str(want).lower():
            out.append(f"{path}: {have!r} != {want!r}")
    return out


def check_cluster(view: ClusterView, expected: Sequence[str], durability: Durability,
                  max_lag_bytes: int) -> Check:
    """One running leader; every expected member present, streaming on the leader's
    timeline within `max_lag_bytes`; in sync/strict mode a sync standby exists."""
    leaders = [m for m in view.members if m.is_leader]
    if not leaders:
        return Check.failed(f"patroni {view.scope}: no leader")
    if len(leaders) > 1:
        return Check.failed(f"patroni {view.scope}: several leaders {[m.name for m in leaders]}")
    leader = leaders[0]
    if leader.state != "running":
        return Check.failed(f"patroni leader {leader.name} is {leader.state}, not running")
    for name in expected:
        m = view.member(name)
        if m is None:
            return Check.failed(f"patroni member {name} is missing from the cluster")
        if m is leader:
            continue
        if m.state != "streaming":
            return Check.failed(f"patroni replica {name} is {m.state}, not streaming")
        if m.timeline != leader.timeline:
            return Check.failed(
                f"patroni replica {name} is on timeline {m.timeline}, leader on {leader.timeline}"
            )
        if m.lag_bytes is None or m.lag_bytes > max_lag_bytes:
            return Check.failed(
                f"patroni replica {name} lags {m.lag_bytes} bytes (limit {max_lag_bytes})"
            )
    syncs = [m.name for m in view.members if m.role == "sync_standby"]
    if durability in ("sync", "strict") and not syncs:
        return Check.failed(
            f"patroni {view.scope}: no synchronous standby — {durability} mode is degraded "
            "(writes are not copied before they are acknowledged)"
        )
    paused = " (PAUSED: no automatic failover)" if view.paused else ""
    sync = f", sync standby {', '.join(syncs)}" if syncs else ""
    return Check.passed(f"patroni {view.scope}: leader {leader.name}{sync}{paused}")


def check_leader_is(view: ClusterView, name: str) -> Check:
    leader = view.leader()
    if leader is None:
        return Check.failed(f"patroni {view.scope}: no single leader")
    if leader.name != name:
        return Check.failed(f"patroni leader is {leader.name}, expected {name}")
    return Check.passed(f"patroni leader is {name}")


def check_no_pending_restart(view: ClusterView) -> Check:
    pending = [f"{m.name} ({'; '.join(m.pending_reason) or 'unknown'})"
               for m in view.members if m.pending_restart]
    if pending:
        return Check.failed("restart pending on " + ", ".join(pending))
    return Check.passed("no restart pending")
