"""Which node a backup comes from: table-driven over sample Patroni /cluster answers and SQL
probes, each decision with its exact one-line reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from hapair.errors import StepFailed
from hapair.workflows.backup.source import (
    ClusterState,
    NodeState,
    choose_source,
    states_from_patroni,
    states_from_probes,
)

DATA = Path(__file__).parent / "data"
CASES: list[dict[str, Any]] = YAML(typ="safe", pure=True).load(
    (DATA / "source_cases.yaml").read_text()
)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['file']}-{c['want']}")
def test_choice_from_patroni(case: dict[str, Any]) -> None:
    text = (DATA / "patroni" / f"{case['file']}.json").read_text()
    cluster = ClusterState(states_from_patroni(text, ["node1", "node2"]), "patroni")
    decision = choose_source(cluster, case["want"])
    assert decision.reason == case["reason"]
    assert decision.node == case["node"]
    if case["node"] is not None:
        assert decision.role == case["role"]


def test_every_sample_file_has_cases() -> None:
    files = {p.stem for p in (DATA / "patroni").glob("*.json")}
    assert files == {c["file"] for c in CASES}


@pytest.mark.parametrize("text", ["not json", "[]", '{"members": {}}'])
def test_bad_patroni_answers(text: str) -> None:
    with pytest.raises(StepFailed, match="patroni /cluster"):
        states_from_patroni(text, ["node1", "node2"])


def _probe(in_recovery: bool, lsn: str | None, receiver: str | None = None) -> dict[str, Any]:
    return {"in_recovery": in_recovery, "lsn": lsn, "receiver": receiver}


PROBE_CASES = [
    (  # the pair without Patroni: lag from the primary's LSN minus the standby's replay LSN
        {"node1": _probe(False, "0/3000100"), "node2": _probe(True, "0/3000000", "streaming")},
        "auto", "node2",
        "node2 is a healthy standby (streaming, lag 256 B): backing up there keeps the load off "
        "the primary node1",
    ),
    (  # the single server before the upgrade: node2 has no PostgreSQL yet
        {"node1": _probe(False, "0/3000000"),
         "node2": "connection to server on socket failed: No such file or directory"},
        "auto", "node1",
        "no healthy standby (node2 is down (PostgreSQL not answering: connection to server on "
        "socket failed: No such file or directory)): backing up from the primary node1",
    ),
    (  # a standby whose WAL receiver is not running
        {"node1": _probe(False, "0/3000000"), "node2": _probe(True, "0/2000000", None)},
        "auto", "node1",
        "no healthy standby (node2 is recovering (WAL receiver absent), not streaming): "
        "backing up from the primary node1",
    ),
    (  # split brain: never guess
        {"node1": _probe(False, "0/3000000"), "node2": _probe(False, "0/3000000")},
        "auto", None,
        "several nodes say they are primary (node1, node2): refusing to guess; check the pair "
        "(`hapair status`) or pass --from NODE",
    ),
    (
        {"node1": _probe(False, "0/3000000"), "node2": _probe(False, "0/3000000")},
        "node2", "node2", "--from node2: node2 is the primary",
    ),
    (
        {"node1": "timed out", "node2": "unreachable"},
        "auto", None,
        "no node to back up from: node1 down (PostgreSQL not answering: timed out); node2 down "
        "(PostgreSQL not answering: unreachable)",
    ),
]


@pytest.mark.parametrize(("probes", "want", "node", "reason"), PROBE_CASES)
def test_choice_from_sql_probes(probes: dict[str, Any], want: str, node: str | None,
                                reason: str) -> None:
    decision = choose_source(ClusterState(states_from_probes(probes), "sql"), want)
    assert (decision.node, decision.reason) == (node, reason)


def test_lag_limit_is_a_parameter() -> None:
    cluster = ClusterState((NodeState("node1", "primary", "running"),
                            NodeState("node2", "standby", "streaming", 2048)), "t")
    assert choose_source(cluster, "auto", max_lag=1024).node == "node1"
    assert choose_source(cluster, "auto", max_lag=4096).node == "node2"
