"""The compose rollback's plan (order, kinds) and its preflight: the target it chooses, the
refusals (exit 3, nothing touched) and the resume of an unfinished rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rollback_compose_fakes import (
    FILE,
    SECRETS,
    completed_upgrade,
    context,
    hosts,
    members,
    ps,
    rollback_run,
)

import hapair.workflows.rollback_compose.preflight as preflight
from hapair.errors import Refused
from hapair.plan.step import StepKind
from hapair.workflows.rollback_compose.plan import build_compose_rollback_plan
from hapair.workflows.rollback_compose.preflight import prepare_compose_rollback

STATIC_DOOR = [
    ("node1", "compose.redis-master", StepKind.COMMAND),
    ("node2", "compose.app-stopped", StepKind.COMMAND),
    ("node1", "compose.sentinel-stopped", StepKind.COMMAND),
    ("node2", "compose.sentinel-stopped", StepKind.COMMAND),
    ("witness", "compose.sentinel-stopped", StepKind.COMMAND),
    ("node2", "compose.redis-stopped", StepKind.COMMAND),
    ("node1", "compose.pg-async", StepKind.RELOAD),
    ("node2", "compose.patroni-stopped", StepKind.COMMAND),
    ("node1", "compose.file-restored", StepKind.FILE),
    ("node1", "compose.redis-handback", StepKind.RESTART),
    ("node1", "compose.pg-handback", StepKind.RESTART),
    ("node1", "compose.app-recreated", StepKind.RECREATE),
    ("node1", "compose.pg-slot-dropped", StepKind.SQL),
    ("node1", "compose.pg-replication-role", StepKind.SQL),
    ("node1", "compose.pg-slot-cap", StepKind.RELOAD),
    ("node1", "compose.hapair-down", StepKind.COMMAND),
    ("node2", "compose.hapair-down", StepKind.COMMAND),
    ("witness", "compose.hapair-down", StepKind.COMMAND),
    ("node2", "compose.app-down", StepKind.COMMAND),
    ("node1", "compose.verify-single-server", StepKind.PROBE),
    ("node1", "compose.verify-nothing-of-the-pair", StepKind.PROBE),
    ("node1", "journal.upgrade-retired", StepKind.COMMAND),
]


@pytest.fixture(autouse=True)
def patroni_view(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Patroni's GET /cluster, as the preflight reads it (node1 leads unless a test says)."""
    view: list[object] = [members()]
    monkeypatch.setattr(preflight, "cluster", lambda p: view[0])
    return view


def _prepared(tmp_path: Path, transports=None, *, vip: bool = False,  # noqa: ANN001
              wanted: str | None = None, upgraded: bool = True):  # noqa: ANN202
    ctx, p = context(tmp_path, transports, vip=vip)
    if upgraded:
        completed_upgrade(ctx.runs_root)
    pre, cr = prepare_compose_rollback(ctx, p, wanted)
    return pre, cr, ctx


def _shape(plan) -> list[tuple[str, str, StepKind]]:  # noqa: ANN001
    return [(s.host, s.id.split("/", 2)[2], s.kind) for s in plan.steps]


def test_plan_with_a_static_front_door(tmp_path: Path) -> None:
    pre, cr, ctx = _prepared(tmp_path)
    assert (pre.refusals, pre.target, pre.resuming) == ([], "node1", False)
    assert cr is not None and cr.recreate == ["backend", "worker"]
    plan = build_compose_rollback_plan(cr, ctx.runs_root)
    assert _shape(plan) == STATIC_DOOR
    assert plan.name == "rollback" and all(s.id.startswith("rollback/") for s in plan.steps)
    # the two hand-backs are the only restarts, and every step says why in one line
    assert [s.id for s in plan.steps if s.kind is StepKind.RESTART] == [
        "rollback/node1/compose.redis-handback", "rollback/node1/compose.pg-handback"]
    shown = json.dumps(plan.as_dict(ctx.redact))
    for secret in [*SECRETS.values(), *(s.reveal() for s in ctx.generated.existing())]:
        assert secret not in shown


def test_a_vip_front_door_stops_keepalived_peer_first_before_the_peer_s_app(
        tmp_path: Path) -> None:
    pre, cr, ctx = _prepared(tmp_path, vip=True)
    assert cr is not None
    shape = _shape(build_compose_rollback_plan(cr, ctx.runs_root))
    assert shape[:4] == [("node1", "compose.redis-master", StepKind.COMMAND),
                         ("node2", "compose.keepalived-stopped", StepKind.COMMAND),
                         ("node1", "compose.front-door-static", StepKind.COMMAND),
                         ("node2", "compose.app-stopped", StepKind.COMMAND)]
    assert shape[4:] == STATIC_DOOR[2:]


def test_refused_without_a_completed_upgrade_before_any_host_is_asked(tmp_path: Path) -> None:
    transports = hosts()
    pre, cr, _ = _prepared(tmp_path, transports, upgraded=False)
    assert cr is None and pre.refusals == [
        "no completed `hapair upgrade` in the journal: there is no pair to roll back "
        "(nothing changed)"]
    assert all(t.calls == [] for t in transports.values())


def test_the_data_on_node2_asks_for_a_switchover_first(tmp_path: Path,
                                                       patroni_view: list[object]) -> None:
    patroni_view[0] = members("node2")
    pre, cr, _ = _prepared(tmp_path)
    assert cr is None and len(pre.refusals) == 1
    assert "hapair switchover --to node1 --redis" in pre.refusals[0]


@pytest.mark.parametrize(("view", "wanted", "reason"), [
    (members(leaders=2), None, "more than one PostgreSQL leader"),
    (members(), "node2", "--to node2: the data is on node1"),
])
def test_patroni_must_name_one_leader_and_it_must_be_the_wanted_node(
        tmp_path: Path, patroni_view: list[object], view: object, wanted: str | None,
        reason: str) -> None:
    patroni_view[0] = view
    pre, cr, _ = _prepared(tmp_path, wanted=wanted)
    assert cr is None and pre.refusals[0].startswith(reason)


def test_refused_without_the_original_compose_file(tmp_path: Path) -> None:
    transports = hosts()
    del transports["node1"].files[FILE + ".hapair-before"]
    pre, cr, _ = _prepared(tmp_path, transports)
    assert cr is None
    assert pre.refusals == [f"node1: {FILE}.hapair-before (the compose file before the "
                            "upgrade) is missing: the single server's definition is unknown"]


def test_refused_when_a_host_has_no_compose(tmp_path: Path) -> None:
    transports = hosts()
    transports["witness"].on(["docker", "compose", "version"], returncode=1, stderr="no")
    transports["witness"].on(["docker-compose", "version"], returncode=127, stderr="no")
    pre, cr, _ = _prepared(tmp_path, transports)
    assert cr is None and pre.refusals[0].startswith("witness: no Docker Compose CLI")


def test_refused_when_patroni_does_not_run_on_the_target(tmp_path: Path) -> None:
    transports = hosts()
    transports["node1"].on(ps("cms-hapair", "hapair-patroni"), stdout="")
    pre, cr, _ = _prepared(tmp_path, transports)
    assert cr is None and pre.refusals == [
        "node1: hapair-patroni does not run (Patroni holds the data until the rollback hands "
        "it back)"]


def test_an_unfinished_rollback_resumes_without_asking_patroni(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def gone(_p: object) -> None:
        raise Refused("Patroni cluster view unavailable")

    monkeypatch.setattr(preflight, "cluster", gone)
    transports = hosts()
    transports["node1"].on(ps("cms-hapair", "hapair-patroni"), stdout="")  # handed back
    ctx, p = context(tmp_path, transports)
    completed_upgrade(ctx.runs_root)
    rollback_run(ctx.runs_root, ["rollback/node1/compose.redis-master"], "failed")
    pre, cr = prepare_compose_rollback(ctx, p, None)
    assert (pre.refusals, pre.target, pre.resuming) == ([], "node1", True)
    assert cr is not None
    pre, cr = prepare_compose_rollback(ctx, p, "node2")
    assert cr is None and pre.refusals == [
        "--to node2: the rollback in progress targets node1; finish it first"]
