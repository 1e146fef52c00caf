"""The run journal: an append-only JSONL file per run, fsync'd record by record.

Layout on the controller: `<runs_root>/<plan>/<run id>/journal.jsonl`, plus the symlink
`<runs_root>/<plan>/latest` → the newest run directory. Run ids are `<UTC timestamp>-<6 hex>`.
Every string of every record goes through the redact function before it is written, so no
secret reaches the disk even when a command's error output echoes one.

The reader (History) folds the records of every run of a plan into the state of each step id:
its last result and whether hapair's change is currently applied (the set rollback undoes).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

from hapair.errors import Refused
from hapair.plan.step import Redact, no_redact

JOURNAL_FILE = "journal.jsonl"
LATEST = "latest"


class Result(StrEnum):
    OK = "ok"  # the action ran and verify then held
    SKIPPED = "skipped"  # verify already held: nothing done
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # Ctrl-C during the step
    UNDONE = "undone"  # rollback took the step back
    REFUSED = "refused"  # run refused before touching anything (rollback artifacts gone)
    STARTED = "started"  # a start with no end: the controller died during the step
    WOULD_RUN = "would-run"  # dry run
    WOULD_UNDO = "would-undo"  # dry run of a rollback


class JournalCorrupt(Refused):
    """A journal line other than the last is not JSON: someone edited it; do not guess."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(t: datetime) -> str:
    return t.isoformat(timespec="microseconds")


def new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _scrub(value: Any, redact: Redact) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, redact) for v in value]
    return value


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _point_latest(plan_dir: Path, run_id: str) -> None:
    tmp = plan_dir / f".{LATEST}.{run_id}"
    tmp.symlink_to(run_id)
    os.replace(tmp, plan_dir / LATEST)  # atomic: readers see the old or the new run


class Journal:
    """Writer for one run. Each record is one os.write + fsync: a killed controller loses
    at most the record being written, never an earlier one."""

    def __init__(
        self,
        run_dir: Path,
        run_id: str,
        *,
        redact: Redact = no_redact,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.run_dir = run_dir
        self.run_id = run_id
        self.path = run_dir / JOURNAL_FILE
        self._redact = redact
        self._now = now
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        self._fd: int | None = os.open(self.path, flags, 0o600)

    @classmethod
    def create(
        cls,
        runs_root: Path,
        plan_name: str,
        *,
        run_id: str | None = None,
        redact: Redact = no_redact,
        now: Callable[[], datetime] = utcnow,
    ) -> Journal:
        plan_dir = Path(runs_root) / plan_name
        plan_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        run_id = run_id or new_run_id(now())
        run_dir = plan_dir / run_id
        run_dir.mkdir(mode=0o700)
        journal = cls(run_dir, run_id, redact=redact, now=now)
        _fsync_dir(run_dir)
        _point_latest(plan_dir, run_id)
        _fsync_dir(plan_dir)
        return journal

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        if self._fd is None:
            raise ValueError(f"journal {self.path} is closed")
        raw = {"ts": iso(self._now()), "run": self.run_id, "event": event, **fields}
        record: dict[str, Any] = _scrub(raw, self._redact)
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        os.write(self._fd, line.encode())
        os.fsync(self._fd)
        return record

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()


# --- reading ---------------------------------------------------------------------------------


def read_records(path: Path) -> list[dict[str, Any]]:
    """All records of one journal. A torn last line (killed mid-write) is ignored."""
    lines = Path(path).read_bytes().split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            raise JournalCorrupt(f"{path}:{n}: not a JSON record; refusing to guess") from None
    # A torn tail is the record being written when the controller died: not an error.
    with contextlib.suppress(ValueError):
        if tail.strip():
            records.append(json.loads(tail))
    return records


@dataclass(frozen=True)
class StepState:
    step_id: str
    result: Result
    reason: str
    run_id: str
    at: str
    applied: bool  # hapair's change is in place (ok, and not undone since)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    mode: str
    digest: str
    started: str
    result: str  # "" while running, or when the controller died before run.end
    reason: str = ""


@dataclass
class History:
    runs: list[RunInfo] = field(default_factory=list)
    steps: dict[str, StepState] = field(default_factory=dict)

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> History:
        h = cls()
        for r in records:
            h._fold(r)
        return h

    @classmethod
    def load(cls, runs_root: Path, plan_name: str) -> History:
        """Every run of the plan, oldest first (by the first record's timestamp)."""
        plan_dir = Path(runs_root) / plan_name
        if not plan_dir.is_dir():
            return cls()
        runs: list[tuple[str, str, list[dict[str, Any]]]] = []
        for d in plan_dir.iterdir():
            if d.is_symlink() or not (d / JOURNAL_FILE).is_file():
                continue
            recs = read_records(d / JOURNAL_FILE)
            runs.append((str(recs[0].get("ts", "")) if recs else "", d.name, recs))
        runs.sort(key=lambda run: run[:2])
        return cls.from_records(rec for _, _, recs in runs for rec in recs)

    def _fold(self, r: dict[str, Any]) -> None:
        event, run, ts = r.get("event"), str(r.get("run", "")), str(r.get("ts", ""))
        if event == "run.start":
            self.runs.append(RunInfo(run, str(r.get("mode", "")), str(r.get("digest", "")), ts,
                                     ""))
        elif event == "run.end" and self.runs and self.runs[-1].run_id == run:
            last = self.runs[-1]
            self.runs[-1] = RunInfo(last.run_id, last.mode, last.digest, last.started,
                                    str(r.get("result", "")), str(r.get("reason", "")))
        elif event in ("step.start", "step.end"):
            sid = str(r["step"])
            prev = self.steps.get(sid)
            applied = prev.applied if prev else False
            if event == "step.start":
                result = Result.STARTED
                reason = "no end record: the controller stopped during this step"
            else:
                result, reason = Result(r["result"]), str(r.get("reason", ""))
                applied = {Result.OK: True, Result.UNDONE: False}.get(result, applied)
            self.steps[sid] = StepState(sid, result, reason, run, ts, applied)

    def state(self, sid: str) -> StepState | None:
        return self.steps.get(sid)

    def applied(self) -> list[str]:
        return [sid for sid, st in self.steps.items() if st.applied]


def latest_run_dir(runs_root: Path, plan_name: str) -> Path | None:
    link = Path(runs_root) / plan_name / LATEST
    return link.resolve() if link.is_symlink() else None
