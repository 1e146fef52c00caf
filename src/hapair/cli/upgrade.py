"""`hapair plan` and `hapair upgrade`: one server to the HA pair, step by step, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from hapair.cli.compose_plan import render_compose
from hapair.cli.options import (
    OutputFormat,
    dry_run_option,
    inventory_option,
    lock_wait_option,
    output_option,
    yes_option,
)
from hapair.cli.output import emit, err_console, progress
from hapair.cli.planrun import confirm, fail_if_clients_failed, run_plan
from hapair.drill.report import render_table
from hapair.errors import Refused
from hapair.inventory import load_inventory
from hapair.workflows.context import workflow_context
from hapair.workflows.native_only import compose_hosts
from hapair.workflows.upgrade.params import UpgradeParams
from hapair.workflows.upgrade.plan import build_plan
from hapair.workflows.upgrade.preflight import run_preflight
from hapair.workflows.upgrade.verify import facts as report_facts
from hapair.workflows.upgrade_compose.prepare import prepare_compose

NOTES = [
    "media replication is asynchronous: an upload reaches the other site within about the "
    "replication interval (5 s); see docs/storage.md",
]


COMPOSE_NOT_PROVEN = (
    "`hapair upgrade` on compose hosts: its steps are tested against the exact commands they "
    "run, but have not yet run end to end on Docker engines; `hapair plan` shows them. Add "
    "--experimental-compose to run them anyway (on a staging copy of the server first)")


def _plan_document(p: UpgradeParams, plan: Any, pre: Any, redact: Any) -> dict[str, Any]:
    return {
        "plan": plan.as_dict(redact),
        "risks": [r.as_dict() for r in pre.risks],
        "refused": bool(pre.refusals),
        "resuming": pre.resuming,
        "automatic_failover": p.names.witness is not None,
        "notes": NOTES,
    }


def _render_plan(doc: dict[str, Any], console: Console) -> None:
    table = Table(title="hapair upgrade plan", show_lines=False)
    for col in ("#", "host", "step", "kind", "client impact"):
        table.add_column(col)
    for i, step in enumerate(doc["plan"]["steps"], 1):
        table.add_row(str(i), step["host"], step["id"].split("/", 2)[2], step["kind"],
                      step["client_impact"])
    console.print(table)
    _render_trailer(doc, console)


def _render_trailer(doc: dict[str, Any], console: Console) -> None:
    if not doc["automatic_failover"]:
        console.print("[bold]No witness: automatic failover is OFF; failover is manual.[/bold]")
    for note in doc["notes"]:
        console.print(f"note: {note}")
    for risk in doc["risks"]:
        console.print(f"{risk['severity'].upper()}: {risk['reason']}", markup=False)
    if doc["refused"]:
        console.print("[bold red]refused: fix the problems above; nothing was changed[/]")


def _refuse(pre: Any) -> None:
    reasons = "; ".join(r.reason for r in pre.refusals)
    raise Refused(f"upgrade refused, nothing changed: {reasons}")


@click.command("plan")
@inventory_option
@output_option
def plan_cmd(inventory: Path, output: OutputFormat) -> None:
    """Probe every host read-only and print the upgrade's ordered steps and risks."""
    _plan_or_dry_run(inventory, output)


def _plan_or_dry_run(inventory: Path, output: OutputFormat) -> None:
    inv = load_inventory(inventory)
    with workflow_context(inv) as ctx:
        p = UpgradeParams(inv, ctx.generated)
        if compose_hosts(inv):
            _compose_plan(ctx, p, output)
            return
        progress("probing hosts (read-only)")
        pre = run_preflight(ctx, p)
        emit(_plan_document(p, build_plan(p), pre, ctx.redact), output, _render_plan)
        if pre.refusals:
            _refuse(pre)


def _compose_plan(ctx: Any, p: UpgradeParams, output: OutputFormat) -> None:
    progress("compose: discovering the stack on the first node and probing hosts (read-only)")
    prepared = prepare_compose(ctx, p, real_secrets=False)
    doc = _plan_document(p, prepared.plan, prepared.preflight, ctx.redact)
    doc["compose"] = prepared.preview.as_dict()
    doc["notes"] = [*doc["notes"], COMPOSE_NOT_PROVEN]
    emit(doc, output, _render_compose_plan)
    if prepared.preflight.refusals:
        _refuse(prepared.preflight)


def _render_compose_plan(doc: dict[str, Any], console: Console) -> None:
    render_compose(doc, console)
    _render_plan(doc, console)


@click.command("upgrade")
@inventory_option
@dry_run_option
@yes_option
@lock_wait_option
@click.option("--drill-load", is_flag=True,
              help="Run the drill load against the front door during the upgrade and report "
                   "failed requests and lost writes (exit 4 if any).")
@click.option("--allow-any-target", is_flag=True,
              help="Let --drill-load target a front door outside loopback and the lab.")
@click.option("--experimental-compose", is_flag=True,
              help="Run the compose form of the upgrade, whose steps have not yet run end to "
                   "end on Docker engines (docs/compose.md). Try it on a staging copy first.")
@output_option
def upgrade_cmd(inventory: Path, dry_run: bool, yes: bool, lock_wait: float, drill_load: bool,
                allow_any_target: bool, experimental_compose: bool,
                output: OutputFormat) -> None:
    """Upgrade the single server to the HA pair (resumes after an interruption)."""
    if dry_run:
        _plan_or_dry_run(inventory, output)
        return
    inv = load_inventory(inventory)
    if compose_hosts(inv) and not experimental_compose:
        raise Refused(COMPOSE_NOT_PROVEN)
    with workflow_context(inv) as ctx:
        p = UpgradeParams(inv, ctx.generated)
        done = completed_run(ctx.runs_root)
        if done is not None:
            # The pair exists; roles may have moved since (switchover, failover). Re-checking
            # the upgrade's first-time topology would be wrong: `hapair check` is the tool.
            emit({"already_upgraded": True, "run": done}, output, lambda d, c: c.print(
                f"already upgraded (run {d['run']}): nothing to do; `hapair check` verifies "
                "the pair as it is now"))
            return
        if compose_hosts(inv):
            progress("compose: discovering the stack on the first node and probing hosts "
                     "(read-only)")
            prepared = prepare_compose(ctx, p, real_secrets=True)
            pre, plan = prepared.preflight, prepared.plan
        else:
            progress("preflight: probing hosts (read-only)")
            pre, plan = run_preflight(ctx, p), build_plan(p)
        for risk in pre.risks:
            err_console.print(f"{risk.severity.value}: {risk.reason}", markup=False)
        if pre.refusals:
            _refuse(pre)
        if not yes:
            confirm(f"Run {len(plan.steps)} steps on {', '.join(plan.hosts())}?",
                    "upgrade changes every host")
        report, drill = run_plan(plan, ctx, p, what="upgrade", lock_wait=lock_wait,
                                 drill_load=drill_load, allow_any_target=allow_any_target,
                                 is_final_check=lambda sid: "/verify." in sid
                                 or sid.endswith("/front-door"))
        doc = {"run": report.as_dict(), "client_impact": drill.to_dict() if drill else None,
               "notes": NOTES}
        if compose_hosts(inv):  # the native report reads the hosts' own servers
            emit(doc, output, _render_run)
        else:
            emit({**doc, "report": report_facts(p, ctx.transports)}, output, _render_report)
        fail_if_clients_failed(drill, "upgrade")


def completed_run(runs_root: Path) -> str | None:
    """The id of the upgrade run that finished every step, if any."""
    from hapair.exec.journal import History

    runs = History.load(runs_root, "upgrade").runs
    return next((r.run_id for r in reversed(runs) if r.mode == "apply" and r.result == "ok"),
                None)


def _render_run(doc: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]upgrade complete[/bold]: {len(doc['run'].get('steps', []))} steps")
    _render_notes_and_impact(doc, console)


def _render_report(doc: dict[str, Any], console: Console) -> None:
    rep = doc["report"]
    console.print(f"[bold]upgrade complete[/bold]: primary {rep['primary']}, durability "
                  f"{rep['durability']}")
    console.print("pg_stat_replication on the primary:")
    rows = rep["pg_stat_replication"]
    for row in rows if isinstance(rows, list) else [{"error": rows}]:
        console.print(f"  {row}", markup=False)
    console.print("Sentinel:")
    for row in rep["sentinels"]:
        console.print(f"  {row}", markup=False)
    for name, node in rep["nodes"].items():
        console.print(f"{name}: backend /health/ {node['backend_health']}, load balancer "
                      f"{node['load_balancer']}")
    console.print(f"front door {rep['front_door']['url']}: /health/ "
                  f"{rep['front_door']['health']}")
    console.print(f"media: {rep['media']}", markup=False)
    _render_notes_and_impact(doc, console)


def _render_notes_and_impact(doc: dict[str, Any], console: Console) -> None:
    for note in doc["notes"]:
        console.print(f"note: {note}")
    if doc.get("client_impact"):
        console.print("client impact measured during the upgrade:")
        render_table(doc["client_impact"], console)
