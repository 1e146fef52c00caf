"""Running a journaled plan from the CLI (upgrade, rollback): the confirmation, progress per
step, and the optional drill load whose failed requests and lost writes are the run's
client impact."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable

import click

from hapair.cli.output import progress
from hapair.drill import DrillReport, LoadConfig, LoadGenerator, build_report, check_writes
from hapair.errors import Refused, Unhealthy
from hapair.exec.runner import RunEvent, RunReport, StepRunFailed, execute
from hapair.plan.step import Plan
from hapair.workflows.context import WorkflowContext
from hapair.workflows.upgrade.params import UpgradeParams


def confirm(question: str, what_changes: str) -> None:
    """Ask on the terminal; without one, only -y goes ahead."""
    if not sys.stdin.isatty():
        raise Refused(f"{what_changes}: confirm with -y (no terminal to ask)")
    click.confirm(question, abort=True, err=True)


def run_plan(plan: Plan, ctx: WorkflowContext, p: UpgradeParams, *, what: str,
             lock_wait: float, drill_load: bool, allow_any_target: bool,
             is_final_check: Callable[[str], bool]) -> tuple[RunReport, DrillReport | None]:
    """Execute `plan` (journaled, locked, resumable), under the drill load if asked. A failed
    final check is Unhealthy (exit 4): the work is done, the result is not right."""

    def on_event(e: RunEvent) -> None:
        if e.phase == "ended" and e.outcome is not None:
            progress(f"[{e.index}/{e.total}] {e.step.id}: {e.outcome.result.value} — "
                     f"{e.outcome.reason}")

    load = start_load(p, allow_any_target) if drill_load else None
    try:
        report = execute(plan, ctx.transports, runs_root=ctx.runs_root,
                         command=shlex.join(sys.argv), redact=ctx.redact,
                         lock_wait=lock_wait, on_event=on_event)
    except StepRunFailed as exc:
        if load is not None:
            finish_load(load)  # stop the load; its numbers go to stderr with the failure
        if is_final_check(exc.step_id):
            raise Unhealthy(f"{what} done but a final check failed: {exc}") from None
        raise
    return report, finish_load(load) if load is not None else None


def fail_if_clients_failed(drill: DrillReport | None, what: str) -> None:
    if drill is not None and not drill.ok:
        raise Unhealthy(f"the {what} finished but clients saw failures: "
                        f"{drill.to_dict()['summary']}")


def start_load(p: UpgradeParams, allow_any_target: bool) -> LoadGenerator:
    door = p.inv.front_door
    # A request held behind PgBouncer's PAUSE during the hand-over waits a few seconds: that
    # is a slow request, not a failed one, so the client timeout is generous.
    config = LoadConfig(url=f"http://{door.address}:{door.port}/", duration=None, rate=20,
                        workers=4, timeout=20, allow_any_target=allow_any_target)
    progress(f"drill load running against {config.url}")
    return LoadGenerator(config).start()


def finish_load(load: LoadGenerator) -> DrillReport:
    load.stop()
    result = load.wait()
    report = build_report(result, check_writes(result, retry_for=10))
    progress(f"drill load: {report.to_dict()['summary']}")
    return report
