"""Day-2 verbs that change roles: `switchover`, `failover --test`, `rejoin`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from hapair.cli.options import OutputFormat, inventory_option, output_option, yes_option
from hapair.cli.output import emit, progress
from hapair.drill.report import render_table
from hapair.errors import Refused, Unhealthy, UsageError
from hapair.inventory import load_inventory
from hapair.workflows.context import workflow_context
from hapair.workflows.ops.failover import failover_drill
from hapair.workflows.ops.faults import injector_for, is_lab_inventory
from hapair.workflows.ops.rejoin import rejoin
from hapair.workflows.ops.switchover import postgres_switchover, redis_switchover
from hapair.workflows.upgrade.params import UpgradeParams


@click.command("switchover")
@inventory_option
@click.option("--to", "to", help="The node to promote (default: the other node).")
@click.option("--redis", "redis_too", is_flag=True, help="Also move the Redis master.")
@click.option("--redis-only", is_flag=True, help="Only move the Redis master.")
@output_option
def switchover_cmd(inventory: Path, to: str | None, redis_too: bool, redis_only: bool,
                   output: OutputFormat) -> None:
    """Planned, lossless switchover of the PostgreSQL primary (and/or the Redis master)."""
    inv = load_inventory(inventory)
    results = []
    with workflow_context(inv) as ctx:
        p = UpgradeParams(inv, ctx.generated)
        names = [n.name for n in p.data_nodes]
        if to is not None and to not in names:
            raise UsageError(f"--to {to}: not a data node ({', '.join(names)})")
        if not redis_only:
            progress("PostgreSQL: pausing PgBouncer, switching over through Patroni")
            results.append(postgres_switchover(ctx, p, to).as_dict())
        if redis_too or redis_only:
            progress("Redis: pausing writes, switching over through Sentinel")
            results.append(redis_switchover(ctx, p, to).as_dict())
    emit({"switchovers": results}, output, _render_switchovers)


def _render_switchovers(doc: dict[str, Any], console: Console) -> None:
    for r in doc["switchovers"]:
        console.print(f"{r['service']}: {r['from']} → {r['to']}, writes paused "
                      f"{r['write_pause_s']} s")
        for note in r["notes"]:
            console.print(f"  {note}", markup=False)


@click.command("failover")
@inventory_option
@click.option("--test", "test", is_flag=True, required=True,
              help="Run the failover drill (the only mode so far).")
@click.option("--fault", type=click.Choice(["crash", "partition", "stop"]), default=None,
              help="crash/partition the primary's host (lab) or stop its services (servers).")
@click.option("--with-media", is_flag=True, help="Include media uploads in the drill load.")
@click.option("--allow-any-target", is_flag=True, help="Let the load target a non-lab address.")
@yes_option
@output_option
def failover_cmd(inventory: Path, test: bool, fault: str | None, with_media: bool,
                 allow_any_target: bool, yes: bool, output: OutputFormat) -> None:
    """The failover drill: fault the primary under load, measure, verify, heal, rejoin."""
    inv = load_inventory(inventory)
    lab = is_lab_inventory(inventory)
    fault = fault or ("crash" if lab else "stop")
    if not lab and not yes:
        if not sys.stdin.isatty():
            raise Refused("the drill stops the primary's services: confirm with -y")
        click.confirm("Stop the primary's services to drill a failover?", abort=True, err=True)
    with workflow_context(inv) as ctx:
        p = UpgradeParams(inv, ctx.generated)
        result = failover_drill(ctx, p, injector_for(ctx, inventory, fault),  # type: ignore[arg-type]
                                with_media=with_media, allow_any_target=allow_any_target,
                                say=progress)
    emit(result, output, _render_failover)
    if not result["ok"]:
        raise Unhealthy("failover drill failed: see the report above")


def _render_failover(doc: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]failover drill[/bold] ({doc['fault']} of {doc['old_primary']}): "
                  f"{'PASS' if doc['ok'] else 'FAIL'}")
    console.print(f"  database writes back through the front door after "
                  f"{doc['writes_back_after_s']} s (first write of any kind after "
                  f"{doc['any_write_back_after_s']} s); "
                  f"PostgreSQL leader {doc['new_primary']} after {doc['postgres_leader_after_s']}"
                  f" s; Redis master (Sentinel) {doc['sentinel_master']} after "
                  f"{doc['redis_master_after_s']} s")
    console.print(f"  old primary writable in {doc['old_primary_writable_samples']} of "
                  f"{doc['old_primary_samples']} samples; rejoined: {doc['rejoined']} "
                  f"({doc['rejoin_s']} s)", markup=False)
    if not doc["media_in_load"]:
        console.print("  media uploads left out of the load (object replication not yet set up)")
    render_table(doc["drill"], console)


@click.command("rejoin")
@inventory_option
@click.argument("node")
@click.option("--keep-old-data", is_flag=True,
              help="Keep the diverged data directory aside when a fresh clone is needed.")
@output_option
def rejoin_cmd(inventory: Path, node: str, keep_old_data: bool, output: OutputFormat) -> None:
    """Bring an old primary (or a broken standby) back as a streaming standby."""
    inv = load_inventory(inventory)
    with workflow_context(inv) as ctx:
        p = UpgradeParams(inv, ctx.generated)
        if node not in {n.name for n in p.data_nodes}:
            raise UsageError(f"{node}: not a data node")
        detail = rejoin(ctx, p, node, keep_old_data=keep_old_data)
    emit({"node": node, "state": detail}, output,
         lambda d, c: c.print(f"{d['node']} rejoined: {d['state']}", markup=False))
