"""The runner cycle: verify → skip | run → verify (polling) → journal, audit, progress."""

from __future__ import annotations

from pathlib import Path

import pytest
from runner_fakes import FakeClock, FakeHost, file_step, hosts

from hapair.errors import CommandFailed, ExitCode, Refused, UsageError
from hapair.exec.audit import AUDIT_LOG, Audit
from hapair.exec.journal import History, Journal, Result, read_records
from hapair.exec.runner import RunEvent, Runner, StepRunFailed, execute
from hapair.plan.step import (
    Check,
    CommandCheck,
    Fn,
    FnCheck,
    Plan,
    Run,
    Step,
    StepKind,
    step_id,
)


def runner_for(tmp_path: Path, hs: dict[str, FakeHost], clock: FakeClock | None = None,
               events: list[RunEvent] | None = None) -> tuple[Runner, Journal]:
    journal = Journal.create(tmp_path / "runs", "upgrade")
    clock = clock or FakeClock()
    runner = Runner(hs, journal=journal, audit=Audit(hs, journal.run_id, "alice@ctl"),
                    on_event=events.append if events is not None else None,
                    sleep=clock.sleep, monotonic=clock.monotonic)
    return runner, journal


def events_of(journal: Journal) -> list[tuple[str, str, str]]:
    return [(r["event"], r.get("step", ""), r.get("result", ""))
            for r in read_records(journal.path)]


def audit_lines(host: FakeHost) -> list[str]:
    return host.files.get(AUDIT_LOG, b"").decode().splitlines()


def flag_step(name: str, state: dict[str, int], *, host: str = "node1",
              converge_after: int = 0, fail_with: BaseException | None = None) -> Step:
    """A step on an in-memory flag. `converge_after`: verify is true only on the N-th check
    after the action (a state that takes time to settle); `fail_with`: the action raises."""

    def act(_ctx: object) -> None:
        if fail_with is not None:
            raise fail_with
        state[name] = 1

    def verify(_ctx: object) -> Check:
        if state.get(name, 0) >= 1:
            state[name] += 1
        ok = state.get(name, 0) > converge_after
        return Check(ok, f"{name} is {'on' if ok else 'off'}")

    return Step(id=step_id("upgrade", host, name), host=host, kind=StepKind.COMMAND,
                reason=f"{name} is needed", action=Fn(f"turn {name} on", act),
                verify=FnCheck(f"{name} is on", verify), settle_timeout=3.0, poll_interval=0.5)


def test_all_steps_run_verified_journaled_and_audited(tmp_path: Path) -> None:
    hs = hosts("node1", "node2")
    plan = Plan("upgrade", (file_step("a"), file_step("b", "node2"), file_step("c")))
    runner, journal = runner_for(tmp_path, hs)

    report = runner.run(plan)

    assert [o.result for o in report.outcomes] == [Result.OK] * 3
    assert report.result is Result.OK and report.run_id == journal.run_id
    assert hs["node1"].files["/etc/hapair/a"] == b"on\n"
    assert hs["node2"].files["/etc/hapair/b"] == b"on\n"
    assert events_of(journal) == [
        ("run.start", "", ""),
        ("step.start", "upgrade/node1/a", ""), ("step.end", "upgrade/node1/a", "ok"),
        ("step.start", "upgrade/node2/b", ""), ("step.end", "upgrade/node2/b", "ok"),
        ("step.start", "upgrade/node1/c", ""), ("step.end", "upgrade/node1/c", "ok"),
        ("run.end", "", "ok"),
    ]
    end = read_records(journal.path)[2]
    assert end["reason"] == "node1: /etc/hapair/a has the planned content"
    assert end["start"] and end["end"] and end["duration_s"] is not None
    assert read_records(journal.path)[0]["digest"] == plan.digest()
    lines = audit_lines(hs["node1"])
    assert len(lines) == 2 and len(audit_lines(hs["node2"])) == 1
    assert lines[0].split("\t")[1:] == [f"run={journal.run_id}", "step=upgrade/node1/a",
                                        "result=ok", "operator=alice@ctl"]


def test_step_already_true_is_skipped_with_its_reason(tmp_path: Path) -> None:
    hs = hosts("node1")
    hs["node1"].files["/etc/hapair/a"] = b"on\n"
    runner, journal = runner_for(tmp_path, hs)

    report = runner.run(Plan("upgrade", (file_step("a"), file_step("b"))))

    assert [(o.result, o.reason) for o in report.outcomes] == [
        (Result.SKIPPED, "node1: /etc/hapair/a has the planned content"),
        (Result.OK, "node1: /etc/hapair/b has the planned content"),
    ]
    assert ("<write_file>", "/etc/hapair/a") not in hs["node1"].argvs()
    assert [ln.split("\t")[2] for ln in audit_lines(hs["node1"])] == ["step=upgrade/node1/b"]


def test_failed_step_stops_the_run_and_a_rerun_resumes(tmp_path: Path) -> None:
    hs = hosts("node1")
    reloaded = {"n": 0}

    def reload(_argv: tuple[str, ...], _in: bytes | None) -> tuple[int, str, str]:
        if hs["node1"].files.get("/etc/fixed") is None:
            return 1, "", "reload failed: bad config line 3"
        reloaded["n"] += 1
        return 0, "", ""

    hs["node1"].handlers[("reloader",)] = reload
    hs["node1"].handlers[("is-reloaded",)] = lambda *_: ((0 if reloaded["n"] else 1), "", "")
    middle = Step(id="upgrade/node1/reload", host="node1", kind=StepKind.RELOAD,
                  reason="apply the new config", client_impact="none",
                  action=Run(["reloader"]), verify=CommandCheck(["is-reloaded"]))
    plan = Plan("upgrade", (file_step("a"), middle, file_step("c")))

    runner, journal = runner_for(tmp_path, hs)
    with pytest.raises(StepRunFailed) as err:
        runner.run(plan)
    assert err.value.step_id == "upgrade/node1/reload"
    assert err.value.exit_code == ExitCode.STEP_FAILED
    assert "reload failed: bad config line 3" in str(err.value)
    assert err.value.report is not None
    assert [o.result for o in err.value.report.outcomes] == [Result.OK, Result.FAILED]
    assert "/etc/hapair/c" not in hs["node1"].files
    assert events_of(journal)[-2:] == [("step.end", "upgrade/node1/reload", "failed"),
                                       ("run.end", "", "failed")]
    assert read_records(journal.path)[-1]["at_step"] == "upgrade/node1/reload"
    journal.close()

    hs["node1"].files["/etc/fixed"] = b"yes"  # the operator fixes the cause
    runner2, journal2 = runner_for(tmp_path, hs)
    report = runner2.run(plan)

    assert [o.result for o in report.outcomes] == [Result.SKIPPED, Result.OK, Result.OK]
    history = History.load(tmp_path / "runs", "upgrade")
    assert [r.result for r in history.runs] == ["failed", "ok"]
    assert history.applied() == ["upgrade/node1/a", "upgrade/node1/reload", "upgrade/node1/c"]


@pytest.mark.parametrize(
    ("converge_after", "result", "sleeps"),
    [
        (1, Result.OK, 0),  # true on the first check after the action
        (3, Result.OK, 2),  # converges after two polls
        (99, Result.FAILED, 6),  # never within settle_timeout=3 s at 0.5 s: bounded
    ],
)
def test_verify_after_run_polls_within_the_steps_timeout(
    tmp_path: Path, converge_after: int, result: Result, sleeps: int
) -> None:
    clock = FakeClock()
    runner, journal = runner_for(tmp_path, hosts("node1"), clock)
    plan = Plan("upgrade", (flag_step("x", {}, converge_after=converge_after),))

    if result is Result.FAILED:
        with pytest.raises(StepRunFailed, match="still not true after the action within 3 s"):
            runner.run(plan)
    else:
        runner.run(plan)

    assert len(clock.sleeps) == sleeps and sum(clock.sleeps) <= 3.0
    assert events_of(journal)[-2][2] == result.value


def test_probe_steps_are_checks_only(tmp_path: Path) -> None:
    hs = hosts("node1")
    hs["node1"].handlers[("pg_isready",)] = lambda *_: (0, "accepting", "")
    hs["node1"].handlers[("redis-cli", "ping")] = lambda *_: (1, "", "refused")
    ok = Step(id="upgrade/node1/pg.ready", host="node1", kind=StepKind.PROBE,
              reason="PostgreSQL must answer", verify=CommandCheck(["pg_isready"]))
    bad = Step(id="upgrade/node1/redis.ready", host="node1", kind=StepKind.PROBE,
               reason="Redis must answer", verify=CommandCheck(["redis-cli", "ping"]))
    runner, journal = runner_for(tmp_path, hs)

    with pytest.raises(StepRunFailed, match=r"redis.ready failed: node1: `redis-cli ping` exit"):
        runner.run(Plan("upgrade", (ok, bad)))

    assert [e[2] for e in events_of(journal) if e[0] == "step.end"] == ["ok", "failed"]
    assert audit_lines(hs["node1"]) == []  # probes change nothing: no audit line


def test_interrupt_during_a_step_is_journaled_and_propagates(tmp_path: Path) -> None:
    hs = hosts("node1")
    runner, journal = runner_for(tmp_path, hs)
    plan = Plan("upgrade", (file_step("a"), flag_step("b", {}, fail_with=KeyboardInterrupt()),
                            file_step("c")))

    with pytest.raises(KeyboardInterrupt):
        runner.run(plan)

    assert events_of(journal)[-2:] == [("step.end", "upgrade/node1/b", "interrupted"),
                                       ("run.end", "", "interrupted")]
    assert read_records(journal.path)[-1]["at_step"] == "upgrade/node1/b"
    assert audit_lines(hs["node1"])[-1].split("\t")[3] == "result=interrupted"
    assert "/etc/hapair/c" not in hs["node1"].files


def test_interrupt_between_steps_records_where_the_run_stopped(tmp_path: Path) -> None:
    def on_event(e: RunEvent) -> None:
        if e.phase == "ended" and e.index == 1:
            raise KeyboardInterrupt

    journal = Journal.create(tmp_path / "runs", "upgrade")
    runner = Runner(hosts("node1"), journal=journal, on_event=on_event)
    with pytest.raises(KeyboardInterrupt):
        runner.run(Plan("upgrade", (file_step("a"), file_step("b"))))

    assert events_of(journal)[-2:] == [("step.end", "upgrade/node1/a", "ok"),
                                       ("run.end", "", "interrupted")]
    assert read_records(journal.path)[-1]["at_step"] == "upgrade/node1/b"


def test_dry_run_touches_no_host_and_writes_nothing(tmp_path: Path) -> None:
    hs = hosts("node1", "node2")
    plan = Plan("upgrade", (file_step("a"), file_step("b", "node2")))

    report = execute(plan, hs, runs_root=tmp_path / "runs", command="hapair upgrade",
                     dry_run=True)

    assert report.dry_run and report.result is Result.WOULD_RUN
    assert [(o.step, o.result) for o in report.outcomes] == [
        ("upgrade/node1/a", Result.WOULD_RUN), ("upgrade/node2/b", Result.WOULD_RUN)]
    assert report.as_dict()["would_do"][0]["action"] == "write /etc/hapair/a (mode 0644)"
    assert all(h.calls == [] for h in hs.values())
    assert not (tmp_path / "runs").exists()


def test_progress_events_come_in_order(tmp_path: Path) -> None:
    events: list[RunEvent] = []
    runner, _ = runner_for(tmp_path, hosts("node1"), events=events)
    runner.run(Plan("upgrade", (file_step("a"), file_step("b"))))

    assert [(e.phase, e.index, e.total, e.outcome.result if e.outcome else None)
            for e in events] == [("started", 1, 2, None), ("ended", 1, 2, Result.OK),
                                 ("started", 2, 2, None), ("ended", 2, 2, Result.OK)]


def test_missing_transport_is_a_usage_error_before_anything_runs(tmp_path: Path) -> None:
    runner, journal = runner_for(tmp_path, hosts("node1"))
    with pytest.raises(UsageError, match="no transport for host.*node2"):
        runner.run(Plan("upgrade", (file_step("a"), file_step("b", "node2"))))
    assert read_records(journal.path) == []


def test_a_failed_audit_write_is_journaled_and_does_not_fail_the_step(tmp_path: Path) -> None:
    hs = hosts("node1")
    hs["node1"].handlers[("tee", "-a", "--", AUDIT_LOG)] = lambda *_: (1, "", "disk full")
    runner, journal = runner_for(tmp_path, hs)

    report = runner.run(Plan("upgrade", (file_step("a"),)))

    assert report.result is Result.OK
    assert ("audit.failed", "upgrade/node1/a", "") in events_of(journal)


@pytest.mark.parametrize(
    ("raised", "expected", "cause"),
    [
        (RuntimeError("bug"), StepRunFailed, RuntimeError),  # wrapped, traceback kept
        (CommandFailed("node1", ["x"], 2, "no"), StepRunFailed, None),  # message says it all
        (Refused("peer unreachable"), Refused, None),  # keeps exit 3
    ],
)
def test_errors_raised_by_an_action(
    tmp_path: Path, raised: Exception, expected: type, cause: type | None
) -> None:
    runner, journal = runner_for(tmp_path, hosts("node1"))
    with pytest.raises(expected) as err:
        runner.run(Plan("upgrade", (flag_step("x", {}, fail_with=raised),)))
    assert (type(err.value.__cause__) if err.value.__cause__ else None) is cause
    end = [r for r in read_records(journal.path) if r["event"] == "step.end"][0]
    assert end["result"] == "failed" and str(raised) in end["reason"]


def test_a_host_lost_mid_step_is_a_failed_resumable_step() -> None:
    """Unreachable is a refusal before a run (exit 3) but a failed step during one (exit 1)."""
    from hapair.errors import ExitCode, Unreachable
    from hapair.exec.recording import RecordingTransport
    from hapair.exec.runner import Runner, StepRunFailed
    from hapair.plan.step import Check, Fn, FnCheck, Plan, Step, StepKind

    def lost(_ctx: object) -> None:
        raise Unreachable("node2 (10.99.0.12:22): unreachable over SSH: timed out")

    step = Step(id="upgrade/node2/x", host="node2", kind=StepKind.COMMAND, reason="r",
                action=Fn("x", lost), verify=FnCheck("never", lambda _c: Check(False, "no")))
    try:
        Runner({"node2": RecordingTransport("node2")}).run(Plan("upgrade", (step,)))
    except StepRunFailed as exc:
        assert exc.exit_code == ExitCode.STEP_FAILED and "unreachable over SSH" in str(exc)
    else:
        raise AssertionError("the step should have failed")
