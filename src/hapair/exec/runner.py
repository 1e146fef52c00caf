"""The step runner (STYLE.md): for each step, verify → already true: skip with the reason;
else run, verify again (polling up to the step's settle_timeout), journal the outcome.

A failed step stops the run with StepRunFailed (exit 1); running the same plan again resumes
at the first step whose verify does not hold. Rollback runs the undos of the steps the journal
says hapair applied, in reverse order, after checking that every undo's artifacts still exist.
`execute()` wires it all for a workflow: deploy lock, journal, audit, runner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from hapair.errors import HapairError, Refused, StepFailed, Unreachable, UsageError
from hapair.exec.audit import Audit
from hapair.exec.journal import History, Journal, Result, iso, new_run_id, utcnow
from hapair.exec.lock import Holder, deploy_lock
from hapair.exec.transport import Transport
from hapair.plan.step import Check, Plan, Redact, Step, StepContext, Verify, no_redact, one_line

Mode = Literal["apply", "rollback"]


@dataclass(frozen=True)
class StepOutcome:
    step: str
    host: str
    kind: str
    result: Result
    reason: str
    start: str = ""
    end: str = ""
    duration_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "result": self.result.value}


@dataclass(frozen=True)
class RunEvent:
    """For progress display: `started` before a step, `ended` (with its outcome) after."""

    phase: Literal["started", "ended"]
    step: Step
    index: int  # 1-based
    total: int
    outcome: StepOutcome | None = None


@dataclass(frozen=True)
class RunReport:
    plan: str
    mode: Mode
    dry_run: bool
    result: Result
    outcomes: tuple[StepOutcome, ...]
    run_id: str | None = None
    journal: str | None = None
    rows: tuple[dict[str, Any], ...] = field(default=())  # dry run: the steps as `plan` shows

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "plan": self.plan, "mode": self.mode, "dry_run": self.dry_run,
            "result": self.result.value, "run_id": self.run_id, "journal": self.journal,
            "steps": [o.as_dict() for o in self.outcomes],
        }
        if self.dry_run:
            d["would_do"] = list(self.rows)
        return d


class StepRunFailed(StepFailed):
    """Exit 1, resumable. `report` holds the outcomes up to and including the failure."""

    def __init__(self, step_id: str, reason: str) -> None:
        self.step_id = step_id
        self.reason = reason
        self.report: RunReport | None = None
        super().__init__(f"step {step_id} failed: {reason}")


@dataclass
class _Attempt:
    acted: bool = False  # the action (or undo) was started: the host may have changed


_Cycle = Callable[[Step, StepContext, _Attempt], tuple[Result, str]]


class Runner:
    def __init__(
        self,
        transports: Mapping[str, Transport],
        *,
        journal: Journal | None = None,
        audit: Audit | None = None,
        redact: Redact = no_redact,
        on_event: Callable[[RunEvent], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._transports = transports
        self._journal_w = journal
        self._audit_log = audit
        self._redact = redact
        self._on_event = on_event or (lambda _e: None)
        self._sleep, self._monotonic, self._now = sleep, monotonic, now

    # --- public ------------------------------------------------------------------------------

    def run(self, plan: Plan, *, dry_run: bool = False) -> RunReport:
        if dry_run:
            return self._preview(plan, "apply", plan.steps, Result.WOULD_RUN)
        return self._execute(plan, "apply", plan.steps, self._apply_cycle)

    def rollback(self, plan: Plan, history: History, *, dry_run: bool = False) -> RunReport:
        applied = history.applied()
        todo = [s for s in reversed(plan.steps) if s.id in applied]
        unknown = [sid for sid in applied if plan.get(sid) is None]
        if dry_run:
            return self._preview(plan, "rollback", todo, Result.WOULD_UNDO)

        def precheck() -> None:
            if unknown:
                raise Refused(f"rollback of {plan.name} refused: applied steps are not in the "
                              f"current plan, their undo is unknown: {', '.join(unknown)}")
            missing = self._missing_artifacts(todo)
            if missing:
                raise Refused(f"rollback of {plan.name} refused, undo artifacts are gone: "
                              + "; ".join(missing))

        return self._execute(plan, "rollback", todo, self._undo_cycle, precheck)

    # --- the loop ----------------------------------------------------------------------------

    def _execute(self, plan: Plan, mode: Mode, steps: Sequence[Step], cycle: _Cycle,
                 precheck: Callable[[], None] | None = None) -> RunReport:
        missing = sorted({s.host for s in steps} - set(self._transports))
        if missing:
            raise UsageError(f"plan {plan.name}: no transport for host(s) {', '.join(missing)}")
        self._journal("run.start", plan=plan.name, mode=mode, digest=plan.digest(self._redact),
                      steps=[s.id for s in steps])
        outcomes: list[StepOutcome] = []
        try:
            if precheck:
                precheck()
            for i, step in enumerate(steps, 1):
                self._step(step, i, len(steps), cycle, outcomes)
        except BaseException as exc:
            at = _stopped_at(steps, outcomes)
            result = (Result.INTERRUPTED if isinstance(exc, KeyboardInterrupt)
                      else Result.REFUSED if isinstance(exc, Refused) else Result.FAILED)
            self._journal("run.end", result=result.value, at_step=at, reason=self._reason(exc))
            if isinstance(exc, StepRunFailed):
                exc.report = self._report(plan, mode, result, outcomes)
            raise
        self._journal("run.end", result=Result.OK.value, reason=f"{len(outcomes)} steps")
        return self._report(plan, mode, Result.OK, outcomes)

    def _step(self, step: Step, index: int, total: int, cycle: _Cycle,
              outcomes: list[StepOutcome]) -> None:
        self._on_event(RunEvent("started", step, index, total))
        t0, start = self._monotonic(), iso(self._now())
        self._journal("step.start", step=step.id, host=step.host, kind=step.kind.value)
        attempt = _Attempt()

        def finish(result: Result, reason: str) -> StepOutcome:
            outcome = StepOutcome(step.id, step.host, step.kind.value, result,
                                  self._redact(one_line(reason)), start, iso(self._now()),
                                  round(self._monotonic() - t0, 3))
            self._journal("step.end", **outcome.as_dict())
            outcomes.append(outcome)  # before the hooks: an interrupt there is "between steps"
            if attempt.acted:
                self._audit(step, result)
            self._on_event(RunEvent("ended", step, index, total, outcome))
            return outcome

        try:
            result, reason = cycle(step, StepContext(step.host, self._transports), attempt)
        except KeyboardInterrupt:
            finish(Result.INTERRUPTED, "interrupted by the operator (Ctrl-C)")
            raise
        except Exception as exc:
            outcome = finish(Result.FAILED, self._reason(exc))
            # A host lost mid-step is a failed step (exit 1, resumable), not a refusal.
            if (isinstance(exc, HapairError) and not isinstance(exc, StepFailed)
                    and not isinstance(exc, Unreachable)):
                exc.add_note(f"during step {step.id}")
                raise  # Refused, Unhealthy, UsageError keep their exit codes
            # A HapairError's message is the whole story (and the redacted one is in reason).
            raise StepRunFailed(step.id, outcome.reason) from (
                None if isinstance(exc, HapairError) else exc)
        outcome = finish(result, reason)
        if result is Result.FAILED:
            raise StepRunFailed(step.id, outcome.reason)

    # --- cycles ------------------------------------------------------------------------------

    def _apply_cycle(self, step: Step, ctx: StepContext, attempt: _Attempt) -> tuple[Result, str]:
        if step.action is None:  # PROBE: the check is the step
            chk = self._settle(step.verify, ctx, step.settle_timeout, step.poll_interval)
            return (Result.OK if chk.ok else Result.FAILED), chk.reason
        before = step.verify.check(ctx)
        if before.ok:
            return Result.SKIPPED, before.reason
        attempt.acted = True
        step.action.run(ctx)
        after = self._settle(step.verify, ctx, step.settle_timeout, step.poll_interval)
        if after.ok:
            return Result.OK, after.reason
        waited = f" within {step.settle_timeout:g} s" if step.settle_timeout else ""
        return Result.FAILED, f"still not true after the action{waited}: {after.reason}"

    def _undo_cycle(self, step: Step, ctx: StepContext, attempt: _Attempt) -> tuple[Result, str]:
        undo = step.undo
        if undo is None:
            return Result.SKIPPED, "no undo declared: this change stays"
        if undo.verify is not None:
            before = undo.verify.check(ctx)
            if before.ok:
                return Result.UNDONE, f"already undone: {before.reason}"
        attempt.acted = True
        undo.action.run(ctx)
        if undo.verify is None:
            return Result.UNDONE, f"ran {undo.describe()}"
        after = self._settle(undo.verify, ctx, undo.settle_timeout, step.poll_interval)
        if after.ok:
            return Result.UNDONE, after.reason
        return Result.FAILED, f"undo ran but is not verified: {after.reason}"

    def _settle(self, verify: Verify, ctx: StepContext, timeout: float,
                interval: float) -> Check:
        """Bounded polling: some states (replication, health) take seconds to converge."""
        deadline = self._monotonic() + timeout
        while True:
            chk = verify.check(ctx)
            left = deadline - self._monotonic()
            if chk.ok or left <= 0:
                return chk
            self._sleep(min(interval, left))

    # --- helpers -----------------------------------------------------------------------------

    def _missing_artifacts(self, steps: Sequence[Step]) -> list[str]:
        missing = []
        for s in steps:
            ctx = StepContext(s.host, self._transports)
            for need in s.undo.needs if s.undo else ():
                try:
                    chk = need.check(ctx)
                except Exception as exc:  # an unreachable host cannot vouch for its artifact
                    chk = Check(False, self._reason(exc))
                if not chk.ok:
                    missing.append(f"{s.id} needs {need.describe()} ({chk.reason})")
        return [self._redact(m) for m in missing]

    def _preview(self, plan: Plan, mode: Mode, steps: Sequence[Step],
                 result: Result) -> RunReport:
        outcomes = tuple(StepOutcome(s.id, s.host, s.kind.value, result, self._redact(s.reason))
                         for s in steps)
        rows = tuple(s.as_dict(self._redact) for s in steps)
        return RunReport(plan.name, mode, True, result, outcomes, rows=rows)

    def _report(self, plan: Plan, mode: Mode, result: Result,
                outcomes: Sequence[StepOutcome]) -> RunReport:
        j = self._journal_w
        return RunReport(plan.name, mode, False, result, tuple(outcomes),
                         j.run_id if j else None, str(j.path) if j else None)

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, KeyboardInterrupt):
            return "interrupted by the operator (Ctrl-C)"
        text = str(exc) if isinstance(exc, HapairError) else f"{type(exc).__name__}: {exc}"
        return self._redact(one_line(text))

    def _journal(self, event: str, **fields: Any) -> None:
        if self._journal_w is not None:
            self._journal_w.write(event, **fields)

    def _audit(self, step: Step, result: Result) -> None:
        if self._audit_log is None:
            return
        try:
            self._audit_log.record(step.host, step.id, result.value)
        except Exception as exc:  # the audit line must not hide the step's own outcome
            self._journal("audit.failed", step=step.id, host=step.host, reason=self._reason(exc))


def _stopped_at(steps: Sequence[Step], outcomes: Sequence[StepOutcome]) -> str:
    """The step a stopped run was in (failed, interrupted) or was about to start."""
    if outcomes and outcomes[-1].result in (Result.FAILED, Result.INTERRUPTED):
        return outcomes[-1].step
    return steps[len(outcomes)].id if len(outcomes) < len(steps) else ""


def execute(
    plan: Plan,
    transports: Mapping[str, Transport],
    *,
    runs_root: Path,
    command: str,
    message: str = "",
    mode: Mode = "apply",
    dry_run: bool = False,
    lock_wait: float = 0.0,
    lock_host: str | None = None,
    break_lock: bool = False,
    redact: Redact = no_redact,
    on_event: Callable[[RunEvent], None] | None = None,
) -> RunReport:
    """Run (or roll back) a plan the way every workflow should: under the deploy lock, with a
    journal under `runs_root/<plan>/` and an audit line per executed step on each host.
    A dry run takes no lock, writes nothing and touches no host."""
    if mode not in ("apply", "rollback"):
        raise UsageError(f"unknown run mode {mode!r}")
    if dry_run:
        runner = Runner(transports, redact=redact, on_event=on_event)
        if mode == "rollback":
            return runner.rollback(plan, History.load(runs_root, plan.name), dry_run=True)
        return runner.run(plan, dry_run=True)
    remote = None
    if lock_host is not None:
        if lock_host not in transports:
            raise UsageError(f"lock host {lock_host!r} has no transport")
        remote = transports[lock_host]
    run_id = new_run_id(utcnow())
    holder = Holder.current(command, message, run_id)
    with (
        deploy_lock(runs_root, holder, wait=lock_wait, remote=remote,
                    break_lock=break_lock) as rlock,
        Journal.create(runs_root, plan.name, run_id=run_id, redact=redact) as journal,
    ):
        if rlock is not None and rlock.broken is not None:
            journal.write("lock.broken", host=lock_host, holder=asdict(rlock.broken))
        audit = Audit(transports, run_id, holder.who, redact=redact)
        runner = Runner(transports, journal=journal, audit=audit, redact=redact,
                        on_event=on_event)
        if mode == "rollback":
            return runner.rollback(plan, History.load(runs_root, plan.name))
        return runner.run(plan)
