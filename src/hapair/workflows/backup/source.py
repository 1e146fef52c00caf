"""Which node a backup is taken from, decided from a frozen view of the pair. Pure.

Facts come from Patroni's REST `GET /cluster` when it answers (the pair), else from SQL on
each node (`pg_is_in_recovery()`, the WAL receiver, LSNs: the single server before the
upgrade). A healthy standby is preferred so the dump does not load the primary; every
decision carries a one-line reason that is shown and asserted in tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from hapair.components.patroni.probe import Member, parse_cluster
from hapair.components.pgdump import parse_lsn
from hapair.workflows.backup.model import fmt_bytes

Role = Literal["primary", "standby", "down"]
MAX_STANDBY_LAG = 16 * 1024 * 1024  # bytes of replay lag a "healthy" standby may have

_LEADER = {"leader", "primary", "master"}
_REPLICA = {"replica", "sync_standby", "quorum_standby", "standby_leader"}


@dataclass(frozen=True)
class NodeState:
    name: str
    role: Role
    state: str  # running | streaming | stopped | … | why it is down
    lag_bytes: int | None = None  # a standby's replay lag behind the primary

    def healthy_standby(self, max_lag: int) -> bool:
        return self.role == "standby" and self.why_not_healthy(max_lag) == ""

    def why_not_healthy(self, max_lag: int) -> str:
        if self.role == "down":
            return f"{self.name} is down ({self.state})"
        if self.role == "primary":
            return f"{self.name} is the primary"
        if self.state not in ("streaming", "running"):
            return f"{self.name} is {self.state}, not streaming"
        if self.lag_bytes is None:
            return f"{self.name}'s lag is unknown"
        if self.lag_bytes > max_lag:
            return f"{self.name} lags {fmt_bytes(self.lag_bytes)} (limit {fmt_bytes(max_lag)})"
        return ""

    @property
    def writable(self) -> bool:
        return self.role == "primary" and self.state == "running"


@dataclass(frozen=True)
class ClusterState:
    nodes: tuple[NodeState, ...]
    via: str  # where the facts came from, shown with the decision

    def node(self, name: str) -> NodeState | None:
        return next((n for n in self.nodes if n.name == name), None)

    def primaries(self) -> list[NodeState]:
        return [n for n in self.nodes if n.writable]


@dataclass(frozen=True)
class Decision:
    node: str | None  # None: refuse (reason says why)
    role: Role | None
    reason: str
    lag_bytes: int | None = None


# --- facts ----------------------------------------------------------------------------------


def states_from_patroni(text: str, names: Sequence[str]) -> tuple[NodeState, ...]:
    """GET /cluster JSON -> the state of each inventory node (absent member: down)."""
    by_name = {m.name: m for m in parse_cluster(text).members}
    return tuple(_from_member(name, by_name.get(name)) for name in names)


def _from_member(name: str, m: Member | None) -> NodeState:
    if m is None:
        return NodeState(name, "down", "not a member of the Patroni cluster")
    if m.role in _LEADER:
        return NodeState(name, "primary" if m.state == "running" else "down", m.state)
    if m.role in _REPLICA:
        return NodeState(name, "standby", m.state, m.lag_bytes)
    return NodeState(name, "down", f"Patroni role {m.role or 'unknown'}, state {m.state}")


def states_from_probes(probes: Mapping[str, Mapping[str, object] | str]) -> tuple[NodeState, ...]:
    """SQL probe per node (PROBE_SQL's JSON), or the error text when it failed."""
    primary_lsns = [
        parse_lsn(p.get("lsn")) for p in probes.values()
        if isinstance(p, Mapping) and p.get("in_recovery") is False
    ]
    primary_lsn = primary_lsns[0] if len(primary_lsns) == 1 else None
    out = []
    for name, p in probes.items():
        if not isinstance(p, Mapping):
            out.append(NodeState(name, "down", f"PostgreSQL not answering: {p}"))
        elif p.get("in_recovery") is False:
            out.append(NodeState(name, "primary", "running"))
        else:
            receiver = p.get("receiver")
            state = "streaming" if receiver == "streaming" else (
                f"recovering (WAL receiver {receiver or 'absent'})"
            )
            replay = parse_lsn(p.get("lsn"))
            lag = None
            if primary_lsn is not None and replay is not None:
                lag = max(0, primary_lsn - replay)
            out.append(NodeState(name, "standby", state, lag))
    return tuple(out)


# --- decision -------------------------------------------------------------------------------


def choose_source(cluster: ClusterState, want: str, max_lag: int = MAX_STANDBY_LAG) -> Decision:
    """want: auto | primary | standby | a node name."""
    primaries = cluster.primaries()
    healthy = [n for n in cluster.nodes if n.healthy_standby(max_lag)]
    healthy.sort(key=lambda n: n.lag_bytes or 0)
    if want in ("auto", "primary") and len(primaries) > 1:
        names = ", ".join(n.name for n in primaries)
        return Decision(None, None, f"several nodes say they are primary ({names}): refusing "
                        "to guess; check the pair (`hapair status`) or pass --from NODE")
    if want == "auto":
        if healthy:
            return _standby(healthy[0], primaries)
        if primaries:
            why = "; ".join(n.why_not_healthy(max_lag) for n in cluster.nodes
                            if n.role != "primary") or "no other node"
            return Decision(primaries[0].name, "primary",
                            f"no healthy standby ({why}): backing up from the primary "
                            f"{primaries[0].name}")
        return Decision(None, None, "no node to back up from: " + _all_states(cluster))
    if want == "primary":
        if primaries:
            return Decision(primaries[0].name, "primary",
                            f"--from primary: {primaries[0].name} is the primary")
        return Decision(None, None, "--from primary: no primary is running: "
                        + _all_states(cluster))
    if want == "standby":
        if healthy:
            return _standby(healthy[0], primaries)
        why = "; ".join(n.why_not_healthy(max_lag) for n in cluster.nodes if n.role != "primary")
        return Decision(None, None, f"--from standby: no healthy standby ({why or 'none'})")
    return _named(cluster, want, max_lag)


def _standby(node: NodeState, primaries: list[NodeState]) -> Decision:
    state = f"({node.state}, lag {fmt_bytes(node.lag_bytes)})"
    if not primaries:
        return Decision(node.name, "standby",
                        f"{node.name} is a standby {state} and no primary is running: backing "
                        "up what it has replayed", node.lag_bytes)
    return Decision(node.name, "standby",
                    f"{node.name} is a healthy standby {state}: backing up there keeps the load "
                    f"off the primary {primaries[0].name}", node.lag_bytes)


def _named(cluster: ClusterState, name: str, max_lag: int) -> Decision:
    node = cluster.node(name)
    if node is None:
        names = ", ".join(n.name for n in cluster.nodes)
        return Decision(None, None, f"--from {name}: no such node (nodes: {names})")
    if node.role == "down":
        return Decision(None, None, f"--from {name}: {name} is down ({node.state})")
    if node.role == "primary":
        return Decision(name, "primary", f"--from {name}: {name} is the primary")
    caveat = node.why_not_healthy(max_lag)
    note = f" although {caveat}: the backup may be stale" if caveat else ""
    return Decision(name, "standby", f"--from {name}: {name} is a standby{note}",
                    node.lag_bytes)


def _all_states(cluster: ClusterState) -> str:
    return "; ".join(f"{n.name} {n.role} ({n.state})" for n in cluster.nodes)
