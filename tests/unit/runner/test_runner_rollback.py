"""Rollback: the recorded undos of completed steps, in reverse, refused when artifacts are gone."""

from __future__ import annotations

from pathlib import Path

import pytest
from runner_fakes import FakeHost, file_step, hosts

from hapair.errors import ExitCode, Refused
from hapair.exec.journal import History, Result, read_records
from hapair.exec.runner import Mode, RunReport, StepRunFailed, execute
from hapair.plan.step import Plan, Run, Step, StepKind, Undo, step_id

BACKUP = "/var/backups/hapair/pg_hba.conf"


def run(plan: Plan, hs: dict[str, FakeHost], root: Path, mode: Mode = "apply",
        dry_run: bool = False) -> RunReport:
    return execute(plan, hs, runs_root=root, command=f"hapair {mode}", mode=mode,
                   dry_run=dry_run)


def removed(host: FakeHost) -> list[str]:
    return [c.argv[-1] for c in host.calls if c.argv[:2] == ("rm", "-f")]


Applied = tuple[Plan, dict[str, FakeHost], Path]


@pytest.fixture
def applied(tmp_path: Path) -> Applied:
    """a, b, c applied on node1 (b's undo needs a backup file, which exists)."""
    hs = hosts("node1")
    hs["node1"].files[BACKUP] = b"host all all 0.0.0.0/0 scram-sha-256\n"
    plan = Plan("upgrade", (file_step("a"), file_step("b", backup=BACKUP), file_step("c")))
    run(plan, hs, tmp_path)
    return plan, hs, tmp_path


def test_rollback_runs_undos_in_reverse_order(applied: Applied) -> None:
    plan, hs, root = applied

    report = run(plan, hs, root, "rollback")

    assert [(o.step, o.result) for o in report.outcomes] == [
        ("upgrade/node1/c", Result.UNDONE), ("upgrade/node1/b", Result.UNDONE),
        ("upgrade/node1/a", Result.UNDONE)]
    assert removed(hs["node1"]) == ["/etc/hapair/c", "/etc/hapair/b", "/etc/hapair/a"]
    assert not any(p.startswith("/etc/hapair/") for p in hs["node1"].files)
    assert History.load(root, "upgrade").applied() == []
    audit = hs["node1"].files["/var/log/hapair/audit.log"].decode()
    assert audit.count("result=undone") == 3


def test_rollback_refuses_when_an_undo_artifact_is_gone_undoing_nothing(applied: Applied) -> None:
    plan, hs, root = applied
    del hs["node1"].files[BACKUP]

    with pytest.raises(Refused) as err:
        run(plan, hs, root, "rollback")

    assert err.value.exit_code == ExitCode.REFUSED
    assert "upgrade/node1/b needs /var/backups/hapair/pg_hba.conf exists" in str(err.value)
    assert "is missing" in str(err.value)
    assert removed(hs["node1"]) == []
    latest = read_records(root / "upgrade" / "latest" / "journal.jsonl")
    assert latest[-1]["event"] == "run.end" and latest[-1]["result"] == "refused"
    assert len(History.load(root, "upgrade").applied()) == 3


def test_an_unreachable_host_cannot_vouch_for_its_artifact(applied: Applied) -> None:
    plan, hs, root = applied
    hs["node1"].down = True
    with pytest.raises(Refused, match="pg_hba.conf exists.*unreachable"):
        run(plan, hs, root, "rollback")


def test_only_steps_hapair_applied_are_undone_even_across_a_resume(tmp_path: Path) -> None:
    hs = hosts("node1")
    hs["node1"].files["/etc/hapair/pre"] = b"on\n"  # already true before hapair: never undone
    boom = Step(id=step_id("upgrade", "node1", "boom"), host="node1", kind=StepKind.COMMAND,
                reason="fails the first time", action=Run(["boom"]),
                verify=file_step("boom").verify,
                undo=Undo(Run(["rm", "-f", "--", "/etc/hapair/boom"])))
    hs["node1"].handlers[("boom",)] = lambda *_: (1, "", "first attempt fails")
    plan = Plan("upgrade", (file_step("pre"), file_step("a"), boom))
    with pytest.raises(StepRunFailed):
        run(plan, hs, tmp_path)

    def fixed(*_: object) -> tuple[int, str, str]:
        hs["node1"].files["/etc/hapair/boom"] = b"on\n"
        return 0, "", ""

    hs["node1"].handlers[("boom",)] = fixed
    resumed = run(plan, hs, tmp_path)  # a is skipped now, but hapair applied it in run 1
    assert [o.result for o in resumed.outcomes] == [Result.SKIPPED, Result.SKIPPED, Result.OK]

    report = run(plan, hs, tmp_path, "rollback")

    assert [o.step for o in report.outcomes] == ["upgrade/node1/boom", "upgrade/node1/a"]
    assert hs["node1"].files["/etc/hapair/pre"] == b"on\n"


def test_rollback_dry_run_lists_undos_in_reverse_without_touching_hosts(applied: Applied) -> None:
    plan, hs, root = applied
    calls_before = len(hs["node1"].calls)

    report = run(plan, hs, root, "rollback", dry_run=True)

    assert [(o.step, o.result) for o in report.outcomes] == [
        ("upgrade/node1/c", Result.WOULD_UNDO), ("upgrade/node1/b", Result.WOULD_UNDO),
        ("upgrade/node1/a", Result.WOULD_UNDO)]
    assert report.rows[1]["undo"] == "rm -f -- /etc/hapair/b"
    assert report.rows[1]["undo_needs"] == [f"{BACKUP} exists"]
    assert len(hs["node1"].calls) == calls_before


def test_rollback_refuses_applied_steps_missing_from_the_current_plan(applied: Applied) -> None:
    plan, hs, root = applied
    smaller = Plan("upgrade", plan.steps[:2])
    with pytest.raises(Refused, match=r"not in the current plan.*upgrade/node1/c"):
        run(smaller, hs, root, "rollback")
    assert removed(hs["node1"]) == []


def test_a_failed_undo_stops_and_a_rerun_continues_where_it_stopped(applied: Applied) -> None:
    plan, hs, root = applied
    rm_b = ("rm", "-f", "--", "/etc/hapair/b")
    hs["node1"].handlers[rm_b] = lambda *_: (1, "", "read-only file system")

    with pytest.raises(StepRunFailed, match="upgrade/node1/b failed: .*read-only file system"):
        run(plan, hs, root, "rollback")
    assert History.load(root, "upgrade").applied() == ["upgrade/node1/a", "upgrade/node1/b"]

    del hs["node1"].handlers[rm_b]
    report = run(plan, hs, root, "rollback")
    assert [o.step for o in report.outcomes] == ["upgrade/node1/b", "upgrade/node1/a"]


def test_a_step_without_undo_is_reported_and_left_in_place(tmp_path: Path) -> None:
    hs = hosts("node1")
    keep = Step(id="upgrade/node1/backup", host="node1", kind=StepKind.COMMAND,
                reason="take a backup first", action=Run(["touch", "/var/backups/x"]),
                verify=file_step("x").verify)

    def touch(*_: object) -> tuple[int, str, str]:
        hs["node1"].files["/etc/hapair/x"] = b"on\n"
        return 0, "", ""

    hs["node1"].handlers[("touch", "/var/backups/x")] = touch
    plan = Plan("upgrade", (keep,))
    run(plan, hs, tmp_path)

    report = run(plan, hs, tmp_path, "rollback")

    assert [(o.result, o.reason) for o in report.outcomes] == [
        (Result.SKIPPED, "no undo declared: this change stays")]
