"""`hapair rollback`: the pair back to one server — the node that holds the data now — with
every write since the upgrade, journaled and resumable like the upgrade. Compose inventories
take the compose form of the plan (workflows/rollback_compose)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from hapair.cli.options import (
    OutputFormat,
    dry_run_option,
    inventory_option,
    lock_wait_option,
    output_option,
    yes_option,
)
from hapair.cli.output import emit, progress
from hapair.cli.planrun import confirm, fail_if_clients_failed, run_plan
from hapair.drill.report import render_table
from hapair.errors import Refused, UsageError
from hapair.inventory import load_inventory
from hapair.plan.step import StepContext
from hapair.workflows.context import WorkflowContext, workflow_context
from hapair.workflows.native_only import compose_hosts
from hapair.workflows.rollback.params import RollbackParams
from hapair.workflows.rollback.plan import build_plan
from hapair.workflows.rollback.preflight import run_preflight
from hapair.workflows.rollback.verify import running_pair_programs, single_node_facts
from hapair.workflows.rollback_compose.plan import build_compose_rollback_plan
from hapair.workflows.rollback_compose.preflight import prepare_compose_rollback
from hapair.workflows.rollback_compose.verify import (
    pair_containers,
    single_server_facts,
    volumes_left,
)
from hapair.workflows.upgrade.params import UpgradeParams


@click.command("rollback")
@inventory_option
@click.option("--to", "to", help="The node that must become the single server (refused "
                                 "unless it holds the data: the Patroni leader).")
@dry_run_option
@yes_option
@lock_wait_option
@click.option("--drill-load", is_flag=True,
              help="Run the drill load against the front door during the rollback and report "
                   "failed requests, the longest write pause and lost writes (exit 4 if any "
                   "request failed or write was lost).")
@click.option("--allow-any-target", is_flag=True,
              help="Let --drill-load target a front door outside loopback and the lab.")
@output_option
def rollback_cmd(inventory: Path, to: str | None, dry_run: bool, yes: bool, lock_wait: float,
                 drill_load: bool, allow_any_target: bool, output: OutputFormat) -> None:
    """Back to one server (the node holding the data), keeping every write; resumable."""
    inv = load_inventory(inventory)
    with workflow_context(inv) as ctx:
        p = UpgradeParams(inv, ctx.generated)
        if to is not None and to not in {n.name for n in p.data_nodes}:
            raise UsageError(f"--to {to}: not a data node")
        if compose_hosts(inv):
            _compose(ctx, p, to, dry_run=dry_run, yes=yes, lock_wait=lock_wait,
                     drill_load=drill_load, allow_any_target=allow_any_target, output=output)
            return
        progress("preflight: probing hosts (read-only)")
        pre = run_preflight(ctx, p, to)
        if pre.refusals or pre.target is None:
            raise Refused("rollback refused, nothing changed: " + "; ".join(pre.refusals))
        rp = RollbackParams(p, pre.target)
        plan = build_plan(rp, ctx.runs_root)
        if dry_run:
            doc = {"target": rp.target, "peer": rp.peer, "resuming": pre.resuming,
                   "preflight": pre.as_dict(), "plan": plan.as_dict(ctx.redact)}
            emit(doc, output, _render_plan)
            return
        if not yes:
            confirm(f"Roll back to the single server {rp.target} ({len(plan.steps)} steps on "
                    f"{', '.join(plan.hosts())})?", "rollback stops the pair on every host")
        report, drill = run_plan(plan, ctx, p, what="rollback", lock_wait=lock_wait,
                                 drill_load=drill_load, allow_any_target=allow_any_target,
                                 is_final_check=lambda sid: "/verify." in sid)
        sctx = StepContext(rp.target, ctx.transports)
        doc = {"target": rp.target, "run": report.as_dict(),
               "single_node": single_node_facts(rp, sctx),
               "pair_programs_running": running_pair_programs(rp, sctx),
               "client_impact": drill.to_dict() if drill else None}
        emit(doc, output, _render_report)
        fail_if_clients_failed(drill, "rollback")


def _compose(ctx: WorkflowContext, p: UpgradeParams, to: str | None, *, dry_run: bool,
             yes: bool, lock_wait: float, drill_load: bool, allow_any_target: bool,
             output: OutputFormat) -> None:
    progress("preflight: probing the compose hosts (read-only)")
    pre, cr = prepare_compose_rollback(ctx, p, to)
    if pre.refusals or pre.target is None or cr is None:
        raise Refused("rollback refused, nothing changed: " + "; ".join(pre.refusals))
    plan = build_compose_rollback_plan(cr, ctx.runs_root)
    if dry_run:
        doc = {"target": cr.target, "peer": cr.peer, "resuming": pre.resuming,
               "preflight": pre.as_dict(), "plan": plan.as_dict(ctx.redact)}
        emit(doc, output, _render_plan)
        return
    if not yes:
        confirm(f"Roll back to the single compose server {cr.target} ({len(plan.steps)} steps "
                f"on {', '.join(plan.hosts())})?", "rollback stops the pair on every host")
    report, drill = run_plan(plan, ctx, p, what="rollback", lock_wait=lock_wait,
                             drill_load=drill_load, allow_any_target=allow_any_target,
                             is_final_check=lambda sid: "/compose.verify-" in sid)
    sctx = StepContext(cr.target, ctx.transports)
    doc = {"target": cr.target, "run": report.as_dict(),
           "single_server": single_server_facts(cr, sctx),
           "hapair_containers_running": pair_containers(cr, sctx),
           "volumes_left": volumes_left(cr, sctx),
           "client_impact": drill.to_dict() if drill else None}
    emit(doc, output, _render_compose_report)
    fail_if_clients_failed(drill, "rollback")


def _render_plan(doc: dict[str, Any], console: Console) -> None:
    table = Table(title=f"hapair rollback plan: single server {doc['target']} "
                        f"(peer {doc['peer']} stops)")
    for col in ("#", "host", "step", "kind", "client impact"):
        table.add_column(col)
    for i, step in enumerate(doc["plan"]["steps"], 1):
        table.add_row(str(i), step["host"], step["id"].split("/", 2)[2], step["kind"],
                      step["client_impact"])
    console.print(table)
    if doc["resuming"]:
        console.print("resuming an interrupted rollback: steps already done are skipped")


def _render_report(doc: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]rolled back[/bold]: single server {doc['target']}")
    single = doc["single_node"]
    console.print(f"  front page {single['front_page']}, /health/ {single['health']}",
                  markup=False)
    console.print(f"  article {single['article']}, session {single['session']}", markup=False)
    console.print(f"  PostgreSQL {single['postgres']}", markup=False)
    console.print(f"  pair programs still running: {doc['pair_programs_running']}",
                  markup=False)
    if doc.get("client_impact"):
        console.print("client impact measured during the rollback:")
        render_table(doc["client_impact"], console)


def _render_compose_report(doc: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]rolled back[/bold]: single compose server {doc['target']}")
    single = doc["single_server"]
    for key in ("postgres", "redis", "app"):
        console.print(f"  {key}: {single[key]}", markup=False)
    console.print(f"  compose file restored: {single['compose_file_restored']}")
    console.print(f"  hapair containers still running: {doc['hapair_containers_running']}",
                  markup=False)
    console.print(f"  volumes kept (remove them by hand once not needed): "
                  f"{doc['volumes_left']}", markup=False)
    if doc.get("client_impact"):
        console.print("client impact measured during the rollback:")
        render_table(doc["client_impact"], console)
