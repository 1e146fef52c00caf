"""The rollback plan's shape for either target, the preflight's decisions (refusals, resume)
and the retirement of the upgrade journal."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hapair.exec.journal import History, Journal
from hapair.inventory import load_inventory
from hapair.plan.step import StepKind
from hapair.workflows.context import GeneratedSecrets
from hapair.workflows.rollback.model import Target
from hapair.workflows.rollback.params import RollbackParams
from hapair.workflows.rollback.plan import build_plan
from hapair.workflows.rollback.preflight import decide, resume_target, upgrade_completed
from hapair.workflows.rollback.verify import retire_upgrade_journal
from hapair.workflows.upgrade.params import UpgradeParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backup"))
from backup_fakes import write_inventory  # noqa: E402


@pytest.fixture
def params(tmp_path: Path) -> UpgradeParams:
    inv = load_inventory(write_inventory(tmp_path))
    return UpgradeParams(inv, GeneratedSecrets(tmp_path / "secrets" / "generated"))


def test_plan_for_node1(params: UpgradeParams, tmp_path: Path) -> None:
    first, second = (n.name for n in params.data_nodes)
    plan = build_plan(RollbackParams(params, first), tmp_path / "runs")
    ids = [s.id.split("/", 1)[1] for s in plan.steps]
    witness = params.names.witness
    # Order that keeps the front door answering: Redis master, front, cache and media, PG.
    expected_head = [
        f"{first}/redis.master", f"{second}/nginx.drain", f"{second}/keepalived.stopped",
        f"{first}/front-door.static",
        f"{first}/nginx.single", f"{second}/nginx.stopped", f"{second}/backend.stopped",
        f"{second}/frontend.stopped", f"{first}/media.precopy",
        f"{first}/app.direct-cache-media", f"{first}/media.final-copy",
        f"{first}/sentinel.stopped", f"{second}/sentinel.stopped", f"{witness}/sentinel.stopped",
        f"{second}/redis.stopped", f"{first}/redis.single",
        f"{first}/postgres.async", f"{second}/patroni.stopped", f"{first}/postgres.handback",
        f"{first}/postgres.slot-dropped", f"{first}/postgres.replication-role",
        f"{first}/app.direct",
    ]
    assert ids[:len(expected_head)] == expected_head
    assert ids[-3:] == [f"{first}/verify.single-node", f"{first}/verify.nothing-of-the-pair",
                        f"{first}/journal.upgrade-retired"]
    for host in (first, second, witness):
        assert f"{host}/etcd.stopped" in ids
    assert f"{second}/s3.stopped" in ids and f"{first}/s3.stopped" not in ids
    assert all(s.id.startswith("rollback/") for s in plan.steps)
    assert plan.name == "rollback"
    # The one restart is the hand-back; every step says why in one line.
    assert [s.id for s in plan.steps if s.kind is StepKind.RESTART] == [
        f"rollback/{first}/postgres.handback"]


def test_plan_for_node2_swaps_roles(params: UpgradeParams, tmp_path: Path) -> None:
    first, second = (n.name for n in params.data_nodes)
    plan = build_plan(RollbackParams(params, second), tmp_path / "runs")
    ids = [s.id.split("/", 1)[1] for s in plan.steps]
    assert ids[:5] == [f"{second}/redis.master", f"{first}/nginx.drain",
                       f"{first}/keepalived.stopped",
                       f"{second}/front-door.static", f"{second}/nginx.single"]
    assert f"{first}/patroni.stopped" in ids and f"{first}/s3.stopped" in ids
    assert f"{second}/postgres.handback" in ids
    # The redis step on node2 rewrites its own config (no pre-upgrade file there).
    single = next(s for s in plan.steps if s.id.endswith(f"{second}/redis.single"))
    assert "CONFIG REWRITE" in single.action.describe()


def test_plan_rejects_a_non_node(params: UpgradeParams) -> None:
    with pytest.raises(ValueError, match="not a data node"):
        RollbackParams(params, params.names.witness or "witness")


def test_plan_describes_without_secrets(params: UpgradeParams, tmp_path: Path) -> None:
    plan = build_plan(RollbackParams(params, params.names.primary), tmp_path / "runs")
    text = str(plan.as_dict())
    for secret in params.inv.secrets().values():
        assert secret.reveal() not in text


def _journal(root: Path, plan: str, mode: str, result: str, steps: list[str]) -> None:
    with Journal.create(root, plan) as j:
        j.write("run.start", plan=plan, mode=mode, digest="x", steps=steps)
        for sid in steps:
            j.write("step.start", step=sid, host="h", kind="command")
            j.write("step.end", step=sid, host="h", kind="command", result="ok", reason="r")
        j.write("run.end", result=result)


def test_upgrade_completed_and_retired(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert upgrade_completed(History.load(runs, "upgrade")) is None
    _journal(runs, "upgrade", "apply", "failed", ["upgrade/node1/a"])
    assert upgrade_completed(History.load(runs, "upgrade")) is None
    _journal(runs, "upgrade", "apply", "ok", ["upgrade/node1/a"])
    done = upgrade_completed(History.load(runs, "upgrade"))
    assert done is not None
    moved = retire_upgrade_journal(runs)
    assert moved is not None and moved.name.startswith("upgrade.rolled-back-")
    assert (moved / "latest").is_symlink()
    assert History.load(runs, "upgrade").runs == []
    assert upgrade_completed(History.load(runs, "upgrade")) is None
    assert retire_upgrade_journal(runs) is None  # idempotent


def test_resume_target(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert resume_target(History.load(runs, "rollback")) is None
    _journal(runs, "rollback", "apply", "failed",
             ["rollback/node2/redis.master", "rollback/node1/keepalived.stopped"])
    assert resume_target(History.load(runs, "rollback")) == "node2"
    _journal(runs, "rollback", "apply", "ok", ["rollback/node2/redis.master"])
    assert resume_target(History.load(runs, "rollback")) is None  # finished


@pytest.mark.parametrize(("upgrade", "resuming", "target", "problems", "want"), [
    (None, None, Target("node1", "leader"), [],
     (None, ["no completed `hapair upgrade` in the journal: there is no pair to roll back "
             "(nothing changed)"])),
    ("run1", None, Target("node1", "leader"), [], ("node1", [])),
    ("run1", None, Target(None, "no PostgreSQL leader"), [], (None, ["no PostgreSQL leader"])),
    ("run1", None, Target("node2", "leader"), ["node2 is not healthy"],
     ("node2", ["node2 is not healthy"])),
    ("run1", "node2", Target("node2", "resuming"), [], ("node2", [])),
])
def test_decide(upgrade: str | None, resuming: str | None, target: Target,
                problems: list[str], want: tuple[str | None, list[str]]) -> None:
    assert decide(upgrade, resuming, target, problems) == want
