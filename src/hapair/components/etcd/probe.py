"""etcd probes: `etcdctl … -w json` command builders, pure parsers and health predicates.

etcdctl 3.4 speaks the v3 API by default; ETCDCTL_ENV pins it anyway (not a secret).
`endpoint health` exits 1 when an endpoint is unhealthy but still prints the JSON list, so run
it with check=False and judge the parsed result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from hapair.components.common import Check
from hapair.components.etcd.config import EtcdMember
from hapair.errors import StepFailed

ETCDCTL_ENV = {"ETCDCTL_API": "3"}


def _etcdctl(endpoints: Sequence[EtcdMember] | Sequence[str], *args: str) -> list[str]:
    urls = [e.client_url if isinstance(e, EtcdMember) else e for e in endpoints]
    # bounded: a dead member must not hang the probe
    return [
        "etcdctl", f"--endpoints={','.join(urls)}", "--dial-timeout=2s",
        "--command-timeout=3s", *args, "-w", "json",
    ]


def endpoint_health_argv(endpoints: Sequence[EtcdMember] | Sequence[str]) -> list[str]:
    return _etcdctl(endpoints, "endpoint", "health")


def endpoint_status_argv(endpoints: Sequence[EtcdMember] | Sequence[str]) -> list[str]:
    return _etcdctl(endpoints, "endpoint", "status")


def member_list_argv(endpoints: Sequence[EtcdMember] | Sequence[str]) -> list[str]:
    return _etcdctl(endpoints, "member", "list")


@dataclass(frozen=True)
class EndpointHealth:
    endpoint: str
    healthy: bool
    took: str = ""
    error: str = ""


@dataclass(frozen=True)
class EndpointStatus:
    endpoint: str
    member_id: int
    leader_id: int
    raft_term: int
    version: str
    db_size: int


@dataclass(frozen=True)
class MemberInfo:
    member_id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool = False


def _load(text: str, what: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StepFailed(f"etcdctl {what}: output is not JSON ({exc.msg})") from None


def parse_endpoint_health(text: str) -> tuple[EndpointHealth, ...]:
    data = _load(text, "endpoint health")
    if not isinstance(data, list):
        raise StepFailed("etcdctl endpoint health: expected a JSON list")
    return tuple(
        EndpointHealth(
            endpoint=str(item.get("endpoint", "")),
            healthy=bool(item.get("health")),
            took=str(item.get("took", "")),
            error=str(item.get("error", "")),
        )
        for item in data
    )


def parse_endpoint_status(text: str) -> tuple[EndpointStatus, ...]:
    data = _load(text, "endpoint status")
    if not isinstance(data, list):
        raise StepFailed("etcdctl endpoint status: expected a JSON list")
    out = []
    for item in data:
        status = item.get("Status") or {}
        header = status.get("header") or {}
        out.append(
            EndpointStatus(
                endpoint=str(item.get("Endpoint", "")),
                member_id=int(header.get("member_id", 0)),
                leader_id=int(status.get("leader", 0)),
                raft_term=int(status.get("raftTerm", header.get("raft_term", 0))),
                version=str(status.get("version", "")),
                db_size=int(status.get("dbSize", 0)),
            )
        )
    return tuple(out)


def parse_member_list(text: str) -> tuple[MemberInfo, ...]:
    data = _load(text, "member list")
    if not isinstance(data, dict):
        raise StepFailed("etcdctl member list: expected a JSON object")
    return tuple(
        MemberInfo(
            member_id=int(m.get("ID", 0)),
            name=str(m.get("name", "")),
            peer_urls=tuple(m.get("peerURLs") or ()),
            client_urls=tuple(m.get("clientURLs") or ()),
            is_learner=bool(m.get("isLearner", False)),
        )
        for m in data.get("members") or ()
    )


def check_quorum(health: Sequence[EndpointHealth], expected_members: int) -> Check:
    """Quorum = a majority of ALL expected members healthy (not of those that answered)."""
    need = expected_members // 2 + 1
    good = [h.endpoint for h in health if h.healthy]
    bad = [f"{h.endpoint} ({h.error or 'unhealthy'})" for h in health if not h.healthy]
    missing = max(0, expected_members - len(health))
    detail = "; ".join(bad + ([f"{missing} not probed"] if missing else []))
    if len(good) >= need:
        tail = f"; down: {detail}" if detail else ""
        return Check.passed(f"etcd quorum: {len(good)}/{expected_members} healthy{tail}")
    return Check.failed(
        f"etcd has no quorum: {len(good)}/{expected_members} healthy, {need} needed; {detail}"
    )


def check_leader(statuses: Sequence[EndpointStatus]) -> Check:
    """Every answering member names the same, non-zero leader."""
    if not statuses:
        return Check.failed("etcd: no member answered endpoint status")
    leaders = {s.leader_id for s in statuses}
    if leaders == {0}:
        return Check.failed("etcd: no member knows a leader")
    if len(leaders) > 1:
        return Check.failed(f"etcd members disagree on the leader: {sorted(leaders)}")
    leader = leaders.pop()
    name = next((s.endpoint for s in statuses if s.member_id == leader), f"id {leader:x}")
    versions = sorted({s.version for s in statuses})
    return Check.passed(f"etcd leader is {name} (term {statuses[0].raft_term}, {versions})")


def check_members(members: Sequence[MemberInfo], expected: Sequence[EtcdMember]) -> Check:
    """The cluster holds exactly the expected members, each started (named) and not a learner."""
    by_name = {m.name: m for m in members}
    peers = {url for m in members for url in m.peer_urls}
    missing = [e.name for e in expected if e.peer_url not in peers]
    unstarted = [url for m in members if not m.name for url in m.peer_urls]
    extra = sorted(set(by_name) - {e.name for e in expected} - {""})
    learners = [m.name for m in members if m.is_learner]
    problems = (
        [f"missing {', '.join(missing)}"] if missing else []
    ) + ([f"not started: {', '.join(unstarted)}"] if unstarted else []) + (
        [f"unexpected {', '.join(extra)}"] if extra else []
    ) + ([f"learners {', '.join(learners)}"] if learners else [])
    if problems:
        return Check.failed("etcd membership: " + "; ".join(problems))
    return Check.passed(f"etcd membership: {', '.join(e.name for e in expected)}")
