"""`hapair backup [verify|list]` and `hapair restore`: backups of the pair's PostgreSQL.

Exit codes: 0 ok (verify: verified); 1 a step failed; 2 bad usage; 3 refused (no source
node, backup not found, target database exists); 4 verification failed / row counts differ.
With `-o json` a failure still prints one JSON document ({"ok": false, "error": …}).

Tests (and the lab) may hand the commands a ready Pair through the root context object:
`obj={"backup_pair": callable(inventory, settings) -> Pair}`; by default the nodes are
reached over SSH as the inventory says.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.console import Console
from rich.markup import escape

from hapair.cli.options import OutputFormat, dry_run_option, output_option, yes_option
from hapair.cli.output import emit, err_console
from hapair.errors import HapairError, Refused, Unhealthy
from hapair.inventory import Inventory, load_inventory
from hapair.workflows.backup import (
    DEFAULT_BACKUP_DIR,
    DEFAULT_SOCKET_DIR,
    KINDS,
    PATRONI_PORT,
    BackupRequest,
    Pair,
    Settings,
    list_all,
    pair_from_inventory,
    render,
    restore_backup,
    take_backup,
    verify_backup,
)

PairFactory = Callable[[Inventory, Settings], Pair]

# `-i` as in every verb, but optional at each level: `hapair backup -i INV` and
# `hapair backup verify -i INV` both work (the group's value is the subcommand's fallback).
_inventory = click.option(
    "-i", "--inventory", type=click.Path(path_type=Path, dir_okay=False), default=None,
    envvar="HAPAIR_INVENTORY", help="Inventory file (YAML). Env: HAPAIR_INVENTORY.",
)


def _locations(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--patroni-port", type=click.IntRange(1, 65535), default=None,
                     help=f"Patroni REST port on the nodes [default: {PATRONI_PORT}].")(f)
    f = click.option("--socket-dir", default=None,
                     help=f"PostgreSQL socket directory on the nodes [default: "
                          f"{DEFAULT_SOCKET_DIR}].")(f)
    f = click.option("--backup-dir", default=None,
                     help=f"Backup directory on the nodes [default: {DEFAULT_BACKUP_DIR}].")(f)
    return f


@click.group(
    "backup",
    invoke_without_command=True,
    help="Take a backup of the pair's PostgreSQL (on a healthy standby when there is one). "
    "Subcommands: verify, list.",
)
@_inventory
@click.option("--kind", type=click.Choice(KINDS), default="logical", show_default=True,
              help="logical: pg_dump -Fc of the app database; physical: pg_basebackup.")
@click.option("--from", "source", default="auto", show_default=True, metavar="auto|primary|"
              "standby|NODE", help="Where to take it; auto prefers a healthy standby.")
@click.option("--keep", type=click.IntRange(min=1), default=None,
              help="After success, keep the newest N backups of this kind on each node "
              "(never the newest verified one).")
@dry_run_option
@output_option
@_locations
@click.pass_context
def backup(ctx: click.Context, inventory: Path | None, kind: str, source: str,
           keep: int | None, dry_run: bool, output: OutputFormat, **locations: Any) -> None:
    ctx.meta["hapair.backup"] = {"inventory": inventory, **locations}
    if ctx.invoked_subcommand is not None:
        _only_for_backup_itself(ctx, ("kind", "source", "keep", "dry_run", "output"))
        return
    req = BackupRequest(kind=kind, want=source, keep=keep, dry_run=dry_run)  # type: ignore[arg-type]
    _run(ctx, inventory, locations, output,
         lambda pair: take_backup(pair, req, log=_log), render.backup_lines)


@backup.command("verify")
@click.argument("backup_id", default="latest", metavar="[BACKUP_ID|latest]")
@_inventory
@click.option("--kind", type=click.Choice(KINDS), default=None,
              help="With 'latest': the newest backup of this kind.")
@output_option
@_locations
@click.pass_context
def verify(ctx: click.Context, backup_id: str, inventory: Path | None, kind: str | None,
           output: OutputFormat, **locations: Any) -> None:
    """Restore a backup into scratch space and check it; the verdict goes into its manifest.

    Exit 0 when verified, 4 when the backup fails verification, 1 when a step fails."""
    _run(ctx, inventory, locations, output,
         lambda pair: verify_backup(pair, backup_id, kind=kind, log=_log),  # type: ignore[arg-type]
         render.verify_lines, failure=_verify_failure)


@backup.command("list")
@_inventory
@output_option
@_locations
@click.pass_context
def list_(ctx: click.Context, inventory: Path | None, output: OutputFormat,
          **locations: Any) -> None:
    """List the backups on every node, newest first."""

    def run(pair: Pair) -> dict[str, Any]:
        entries, warnings = list_all(pair, _log)
        return {"ok": True, "backups": [e.summary() for e in entries], "warnings": warnings}

    _run(ctx, inventory, locations, output, run, render.list_lines)


@click.command("restore")
@click.argument("backup_id", metavar="BACKUP_ID|latest")
@_inventory
@click.option("--into", required=True, metavar="NEW_DB_NAME",
              help="A database that does not exist yet; it is created on the primary.")
@yes_option
@output_option
@_locations
@click.pass_context
def restore(ctx: click.Context, backup_id: str, inventory: Path | None, into: str, yes: bool,
            output: OutputFormat, **locations: Any) -> None:
    """Restore a logical backup into a NEW database and check its row counts.

    Never touches the live database: refuses (exit 3) when the target exists. Exit 4 when
    the restored row counts differ from the backup's manifest."""
    _run(ctx, inventory, locations, output,
         lambda pair: restore_backup(pair, backup_id, into, confirm=_confirm(yes), log=_log),
         render.restore_lines, failure=_restore_failure)


# --- plumbing -------------------------------------------------------------------------------


def _run(
    ctx: click.Context,
    inventory: Path | None,
    locations: dict[str, Any],
    output: OutputFormat,
    action: Callable[[Pair], dict[str, Any]],
    lines: Callable[[dict[str, Any]], list[str]],
    failure: Callable[[dict[str, Any]], str] | None = None,
) -> None:
    group = ctx.meta.get("hapair.backup", {})
    inv_path = inventory or group.get("inventory")
    if inv_path is None:
        raise click.UsageError("Missing option '-i' / '--inventory'.", ctx)
    try:
        settings = Settings(**{k: v if v is not None else getattr(Settings, k)
                               for k, v in _merged(locations, group).items()})
        inv = load_inventory(inv_path)
        pair = _factory(ctx)(inv, settings)
        try:
            doc = action(pair)
        finally:
            for node in pair.nodes:
                node.close()
    except HapairError as exc:
        if output is OutputFormat.json:
            emit({"ok": False, "error": str(exc), "exit_code": exc.exit_code}, output, _draw(lines))
        raise
    emit(doc, output, _draw(lines))
    if not doc.get("ok", True) and failure is not None:
        raise Unhealthy(failure(doc))


def _merged(own: dict[str, Any], group: dict[str, Any]) -> dict[str, Any]:
    return {k: own.get(k) if own.get(k) is not None else group.get(k) for k in own}


def _factory(ctx: click.Context) -> PairFactory:
    obj = ctx.find_root().obj
    if isinstance(obj, dict) and "backup_pair" in obj:
        return obj["backup_pair"]  # type: ignore[no-any-return]
    return pair_from_inventory


def _only_for_backup_itself(ctx: click.Context, names: tuple[str, ...]) -> None:
    for name in names:
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE,
                                              ParameterSource.ENVIRONMENT):
            flag = "--from" if name == "source" else "--" + name.replace("_", "-")
            raise click.UsageError(
                f"{flag} belongs to `hapair backup` itself, not to `{ctx.invoked_subcommand}`"
                " (give it after the subcommand if it has one)", ctx)


def _draw(lines: Callable[[dict[str, Any]], list[str]]) -> Callable[[Any, Console], None]:
    def draw(doc: Any, console: Console) -> None:
        for line in lines(doc):
            console.print(line, markup=False, highlight=False, soft_wrap=True)

    return draw


def _log(line: str) -> None:
    # One line per event, never wrapped; timestamped when it goes to a log file (cron).
    stamp = "" if err_console.is_terminal else datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ ")
    err_console.print(f"[dim]·[/dim] {stamp}{escape(line)}", highlight=False, soft_wrap=True)


def _confirm(yes: bool) -> Callable[[str], bool]:
    def ask(prompt: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise Refused("not on a terminal and no -y: pass -y to confirm the restore")
        return click.confirm(prompt, default=False, err=True)

    return ask


def _verify_failure(doc: dict[str, Any]) -> str:
    problems = doc["verification"]["problems"]
    return f"backup {doc['id']} FAILED verification: {problems[0] if problems else 'unknown'}"


def _restore_failure(doc: dict[str, Any]) -> str:
    return (f"restored into {doc['database']}, but the row counts differ from the backup: "
            f"{doc['problems'][0]}")
