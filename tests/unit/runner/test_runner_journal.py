"""The journal: layout, fsync'd appends that survive a killed controller, the history reader."""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
from pathlib import Path
from typing import Any

import pytest

from hapair.errors import ExitCode
from hapair.exec.journal import (
    History,
    Journal,
    JournalCorrupt,
    Result,
    latest_run_dir,
    read_records,
)


def test_layout_modes_and_latest_pointer(tmp_path: Path) -> None:
    first = Journal.create(tmp_path, "upgrade")
    second = Journal.create(tmp_path, "upgrade")
    first.write("run.start")

    assert first.path == tmp_path / "upgrade" / first.run_id / "journal.jsonl"
    assert latest_run_dir(tmp_path, "upgrade") == second.run_dir
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.run_dir.stat().st_mode) == 0o700
    assert first.run_id != second.run_id
    assert latest_run_dir(tmp_path, "rollback") is None
    first.close()
    second.close()


def test_every_string_is_redacted_even_nested(tmp_path: Path) -> None:
    with Journal.create(tmp_path, "upgrade", redact=lambda s: s.replace("hunter2", "***")) as j:
        j.write("step.end", reason="psql: PASSWORD 'hunter2'", extra={"argv": ["x", "hunter2"]})
    raw = j.path.read_text()
    assert "hunter2" not in raw
    assert read_records(j.path)[0]["extra"] == {"argv": ["x", "***"]}


def _write_then_die(root: str) -> None:
    j = Journal.create(Path(root), "upgrade")
    j.write("run.start", mode="apply", digest="sha256:x")
    j.write("step.start", step="upgrade/node1/a")
    j.write("step.end", step="upgrade/node1/a", result="ok", reason="done")
    j.write("step.start", step="upgrade/node1/b")
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no flush, no atexit


def test_records_survive_a_killed_controller(tmp_path: Path) -> None:
    proc = multiprocessing.get_context("fork").Process(target=_write_then_die,
                                                       args=(str(tmp_path),))
    proc.start()
    proc.join(30)
    try:
        assert proc.exitcode == -signal.SIGKILL
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(5)

    run_dir = latest_run_dir(tmp_path, "upgrade")
    assert run_dir is not None
    assert [r["event"] for r in read_records(run_dir / "journal.jsonl")] == [
        "run.start", "step.start", "step.end", "step.start"]
    history = History.load(tmp_path, "upgrade")
    assert history.state("upgrade/node1/a").result is Result.OK  # type: ignore[union-attr]
    b = history.state("upgrade/node1/b")
    assert b is not None and b.result is Result.STARTED and "controller stopped" in b.reason
    assert history.runs[0].result == ""  # no run.end: the run did not finish


def test_a_torn_last_line_is_ignored_but_a_corrupt_middle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('{"event": "run.start"}\n{"event": "step.st')
    assert read_records(path) == [{"event": "run.start"}]

    path.write_text('{"event": "run.start"}\nnot json\n{"event": "run.end"}\n')
    with pytest.raises(JournalCorrupt, match=r"journal.jsonl:2") as err:
        read_records(path)
    assert err.value.exit_code == ExitCode.REFUSED


def _rec(event: str, step: str = "s", result: str = "", run: str = "r1") -> dict[str, Any]:
    return {"event": event, "step": step, "result": result, "run": run, "ts": "t"}


@pytest.mark.parametrize(
    ("records", "result", "applied"),
    [
        ([_rec("step.start"), _rec("step.end", result="ok")], Result.OK, True),
        ([_rec("step.start"), _rec("step.end", result="skipped")], Result.SKIPPED, False),
        ([_rec("step.start"), _rec("step.end", result="failed")], Result.FAILED, False),
        ([_rec("step.start")], Result.STARTED, False),
        # applied in one run, skipped on resume: still applied (rollback must undo it)
        ([_rec("step.end", result="ok"), _rec("step.end", result="skipped", run="r2")],
         Result.SKIPPED, True),
        ([_rec("step.end", result="ok"), _rec("step.start", run="r2")], Result.STARTED, True),
        ([_rec("step.end", result="ok"), _rec("step.end", result="undone", run="r2")],
         Result.UNDONE, False),
        ([_rec("step.end", result="ok"), _rec("step.end", result="interrupted", run="r2")],
         Result.INTERRUPTED, True),
    ],
)
def test_history_folds_records_into_step_state(
    records: list[dict[str, Any]], result: Result, applied: bool
) -> None:
    state = History.from_records(records).state("s")
    assert state is not None
    assert (state.result, state.applied) == (result, applied)


def test_history_lists_runs_oldest_first_with_their_results(tmp_path: Path) -> None:
    for result in ("failed", "ok"):
        with Journal.create(tmp_path, "upgrade") as j:
            j.write("run.start", mode="apply", digest="sha256:abc")
            j.write("run.end", result=result)
    runs = History.load(tmp_path, "upgrade").runs
    assert [(r.mode, r.digest, r.result) for r in runs] == [
        ("apply", "sha256:abc", "failed"), ("apply", "sha256:abc", "ok")]
    assert History.load(tmp_path, "nothing-yet").runs == []
