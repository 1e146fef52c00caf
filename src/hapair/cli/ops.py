"""Day-2 verbs: `switchover`, `failover --test`/`--to`, `rejoin`, `migrate`."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from hapair.cli.options import (
    OutputFormat,
    dry_run_option,
    inventory_option,
    output_option,
    yes_option,
)
from hapair.cli.output import emit, progress
from hapair.drill.report import render_table
from hapair.errors import Refused, StepFailed, Unhealthy, UsageError
from hapair.inventory import load_inventory
from hapair.workflows.context import workflow_context
from hapair.workflows.native_only import compose_hosts
from hapair.workflows.ops.failover import failover_drill
from hapair.workflows.ops.faults import injector_for, is_lab_inventory
from hapair.workflows.ops.manual_failover import manual_failover
from hapair.workflows.ops.manual_rules import Choices
from hapair.workflows.ops.migrate import migrate
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
            progress("PostgreSQL: switching over through Patroni"
                     + ("" if compose_hosts(inv) else ", behind PgBouncer's PAUSE"))
            results.append(postgres_switchover(ctx, p, to).as_dict())
        if redis_too or redis_only:
            progress("Redis: pausing writes, switching over through Sentinel")
            results.append(redis_switchover(ctx, p, to).as_dict())
    emit({"switchovers": results}, output, _render_switchovers)


def _render_switchovers(doc: dict[str, Any], console: Console) -> None:
    for r in doc["switchovers"]:
        console.print(f"{r['service']}: {r['from']} → {r['to']}, writes paused "
                      f"{r['write_pause_s']} s")
        events = r.get("breakdown", {}).get("events_s", {})
        if events:  # where the pause went: seconds since it began
            console.print("  " + ", ".join(f"{k} {v} s" for k, v in events.items()),
                          markup=False)
        for note in r["notes"]:
            console.print(f"  {note}", markup=False)


@click.command("failover")
@inventory_option
@click.option("--test", "test", is_flag=True, help="Run the failover drill.")
@click.option("--to", "to", metavar="NODE",
              help="Manual failover to NODE: the emergency path when automatic failover "
                   "cannot act (no etcd majority). Fences the old primary first.")
@click.option("--allow-data-loss", is_flag=True,
              help="--to: promote NODE even when it is not known to be in sync (the report "
                   "says which WAL window may be lost).")
@click.option("--old-primary-is-down", is_flag=True,
              help="--to: the operator's fencing statement: the old primary's host is powered "
                   "off (needed when hapair cannot reach it to stop it).")
@click.option("--fault", type=click.Choice(["crash", "partition", "stop"]), default=None,
              help="--test: crash/partition the primary's host (lab) or stop its services.")
@click.option("--with-media/--without-media", default=True, show_default=True,
              help="--test: include media uploads in the load (and report the media RPO).")
@click.option("--allow-any-target", is_flag=True, help="--test: let the load target a non-lab "
                                                       "address.")
@yes_option
@output_option
def failover_cmd(inventory: Path, test: bool, to: str | None, allow_data_loss: bool,
                 old_primary_is_down: bool, fault: str | None, with_media: bool,
                 allow_any_target: bool, yes: bool, output: OutputFormat) -> None:
    """The failover drill (--test), or a manual failover to a node (--to NODE)."""
    if test == (to is not None):
        raise UsageError("say either --test (the drill) or --to NODE (a manual failover)")
    if to is not None:
        _manual_failover(inventory, to, Choices(allow_data_loss, old_primary_is_down), yes,
                         output)
        return
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


def _manual_failover(inventory: Path, to: str, choices: Choices, yes: bool,
                     output: OutputFormat) -> None:
    inv = load_inventory(inventory)
    if not yes:
        if not sys.stdin.isatty():
            raise Refused("a manual failover fences (stops) the old primary: confirm with -y")
        click.confirm(f"Fence the old primary and promote {to}?", abort=True, err=True)
    with workflow_context(inv) as ctx:
        p = UpgradeParams(inv, ctx.generated)
        result = manual_failover(ctx, p, to, choices, say=progress).as_dict()
    emit(result, output, _render_manual)
    if any(n.startswith("Redis master NOT moved") for n in result["notes"]):
        raise Unhealthy("PostgreSQL failed over, but the Redis master did not move")


def _render_manual(doc: dict[str, Any], console: Console) -> None:
    t = doc["timings_s"]
    console.print(f"[bold]manual failover[/bold] {doc['from']} → {doc['to']} ({doc['mode']}; "
                  f"old primary fenced by {doc['fence']})")
    console.print(f"  front door writable after {t.get('front_door_writable')} s "
                  f"(PostgreSQL primary after {t.get('postgres_primary')} s)")
    if doc["may_have_lost"]:
        console.print(f"  [bold red]may have lost:[/bold red] {doc['may_have_lost']}",
                      markup=True)
    else:
        console.print(f"  {doc['to']} was in sync: no acknowledged commit lost")
    for note in doc["notes"]:
        console.print(f"  {note}", markup=False)


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
    media = doc.get("media")
    if media is not None:
        lost = media["lost_at_failover"]
        console.print(f"  media: {media['acknowledged']} uploads acknowledged; "
                      f"{len(lost)} not on {doc['new_primary']}'s site at the failover "
                      f"(media RPO {media['rpo_s']} s); unreadable after rejoin: "
                      f"{len(media['unreadable_after_rejoin'])}", markup=False)
        for item in lost[:10]:
            console.print(f"    {item['key']}: {item['problem']}, acknowledged "
                          f"{item['age_s']} s before the fault", markup=False)
    elif not doc["media_in_load"]:
        console.print("  media uploads left out of the load (--without-media)")
    if doc.get("scheduler"):
        console.print(f"  {doc['scheduler']}", markup=False)
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
        done = rejoin(ctx, p, node, keep_old_data=keep_old_data)
    emit({"node": node, **done}, output, _render_rejoin)


def _render_rejoin(doc: dict[str, Any], console: Console) -> None:
    console.print(f"{doc['node']} rejoined: {doc['state']}", markup=False)
    for note in doc["notes"]:
        console.print(f"  {note}", markup=False)


@click.command("migrate")
@inventory_option
@dry_run_option
@output_option
def migrate_cmd(inventory: Path, dry_run: bool, output: OutputFormat) -> None:
    """Run the app's database migrations once, on the primary's node (compose stacks: the
    one-shot `migrate` service the upgrade moved out of the app's start command). Exit 1
    when the migrations fail (their output is in the report)."""
    inv = load_inventory(inventory)
    with workflow_context(inv) as ctx:
        p = UpgradeParams(inv, ctx.generated)
        progress("finding the primary's node" + (" (dry run: nothing runs)" if dry_run else ""))
        result = migrate(ctx, p, dry_run=dry_run)
    doc = result.as_dict()
    emit(doc, output, _render_migration)
    if doc["ran"] and not result.ok:
        raise StepFailed(f"{result.node}: the migrations exited {result.returncode}")


def _render_migration(doc: dict[str, Any], console: Console) -> None:
    verb = "ran" if doc["ran"] else "would run"
    console.print(f"{doc['node']} (the primary's node) {verb}: {shlex.join(doc['command'])}",
                  markup=False)
    if doc["ran"]:
        console.print(doc["output"].rstrip() or "(no output)", markup=False)
        console.print(f"exit {doc['returncode']}", markup=False)
