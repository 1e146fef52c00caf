"""`hapair backup`: take a logical or physical backup on the best node, then apply retention.

Stages: observe the pair -> choose the source (with a reason) -> [dry run stops here] ->
write `<id>.partial` on the source -> manifest -> rename to `<id>` -> retention on each node.
Any failure removes the partial directory and raises: nothing says "complete" after an error.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hapair import __version__
from hapair.components.pgdump import (
    PROBE_SQL,
    DumpOutput,
    is_recovery_conflict,
    parse_dump_output,
    parse_probe,
    parse_tool_version,
    parse_wal_ranges,
    pg_basebackup_argv,
    pg_dump_argv,
    pg_dumpall_globals_argv,
    pg_restore_list_argv,
    snapshot_dump_script,
    version_argv,
)
from hapair.errors import CommandFailed, HapairError, Refused, StepFailed
from hapair.workflows.backup import store
from hapair.workflows.backup.model import Kind, Manifest, iso, new_id
from hapair.workflows.backup.nodes import (
    LONG_TIMEOUT,
    Log,
    Node,
    Pair,
    as_postgres,
    audit,
    error_text,
    no_log,
    observe,
    psql,
    states_line,
)
from hapair.workflows.backup.retention import RetentionPlan, plan_retention
from hapair.workflows.backup.source import ClusterState, Decision, choose_source

GLOBALS = "globals.sql"
PHYSICAL_DIR = "pgdata"
STATUS_FILE = ".pg_dump.status"

# A physical backup is the data directory as it is: say what that means, in the manifest.
PHYSICAL_NOTES = (
    "the data directory as it is: a server.key or a password written in postgresql.auto.conf "
    "(primary_conninfo) would be inside; the files are 0600 in a 0700 directory — encrypt any "
    "copy that leaves the node",
    "taken on a standby, it carries standby.signal and primary_conninfo: remove them to start "
    "it as a standalone server (docs/backups.md)",
)

CONFLICT_HINT = (
    "queries on a hot standby are cancelled when replay needs what they read; on {node} set "
    "hot_standby_feedback = on (or raise max_standby_streaming_delay), or back up with "
    "--from primary"
)


@dataclass(frozen=True)
class BackupRequest:
    kind: Kind = "logical"
    want: str = "auto"  # auto | primary | standby | NODE
    keep: int | None = None
    dry_run: bool = False


@dataclass
class _Taken:
    files: list[str]
    extra: dict[str, Any]  # manifest fields of the kind
    role: str  # the source's role when the backup ran
    postgres: dict[str, Any]
    tools: dict[str, str]


def take_backup(
    pair: Pair,
    req: BackupRequest,
    *,
    log: Log = no_log,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    cluster = observe(pair, log)
    decision = choose_source(cluster, req.want)
    if decision.node is None:
        raise Refused(f"no backup taken: {decision.reason}")
    log(f"source {decision.node}: {decision.reason}")
    node = pair.node(decision.node)
    started = now()
    backup_id = new_id(req.kind, started)
    result: dict[str, Any] = {
        "id": backup_id,
        "kind": req.kind,
        "node": node.name,
        "path": store.backup_path(node, backup_id),
        "runs_in": node.container,  # compose: the container the tools run in (files: the host's)
        "source": _source_doc(decision, cluster),
        "dry_run": req.dry_run,
    }
    if req.dry_run:
        result["commands"] = _planned_commands(pair, node, req.kind, backup_id)
        result["retention"] = _retention(pair, req, node, now(), apply=False, log=log)
        result["ok"] = True
        return result
    manifest = _take(pair, node, req.kind, backup_id, decision, cluster, started, log, now)
    result.update(manifest=manifest.to_dict(), size_bytes=manifest.size_bytes, ok=True)
    if req.keep is not None:
        try:
            result["retention"] = _retention(pair, req, node, now(), apply=True, log=log)
        except HapairError as exc:
            raise StepFailed(
                f"backup {backup_id} is complete on {node.name}, but retention failed: {exc}"
            ) from exc
    return result


def _take(pair: Pair, node: Node, kind: Kind, backup_id: str, decision: Decision,
          cluster: ClusterState, started: datetime, log: Log,
          now: Callable[[], datetime]) -> Manifest:
    final = store.backup_path(node, backup_id)
    partial = store.backup_path(node, backup_id, partial=True)
    clock = time.monotonic()
    store.ensure_base(node)
    store.make_dir(node, partial)
    try:
        log(f"{kind} backup {backup_id} on {node.where} into {partial}")
        taken = (_logical(pair, node, partial, log) if kind == "logical"
                 else _physical(node, partial, backup_id))
        files = store.file_entries(node, partial, taken.files)
        source = {**_source_doc(decision, cluster), "role": taken.role}
        if taken.role != decision.role:
            log(f"{node.name} was {decision.role} when chosen but {taken.role} during the backup")
        manifest = Manifest(
            id=backup_id, kind=kind, cluster=pair.cluster, source=source,
            postgres=taken.postgres, files=files, started_at=iso(started),
            finished_at=iso(now()), tools={**taken.tools, "hapair": __version__},
            **taken.extra,
        )
        store.write_manifest(node, partial, manifest)
        store.publish(node, partial, final)
    except BaseException as exc:
        removed = _discard(node, partial, log)
        audit(node, backup_id, f"backup/{node.name}/{kind}", "failed", quiet=True)
        if isinstance(exc, HapairError):
            log(f"backup {backup_id} FAILED after {time.monotonic() - clock:.1f}s; "
                + (f"{partial} removed" if removed else f"{partial} is left behind"))
        raise
    try:
        audit(node, backup_id, f"backup/{node.name}/{kind}", "ok")
    except HapairError as exc:
        raise StepFailed(f"backup {backup_id} is complete on {node.name}:{final}, but its "
                         f"audit line could not be written: {exc}") from exc
    log(f"backup {backup_id} written to {node.name}:{final} in {time.monotonic() - clock:.1f}s")
    return manifest


def _discard(node: Node, partial: str, log: Log) -> bool:
    try:
        store.remove(node, partial)
    except HapairError as exc:  # keep the original error; say what is left behind
        log(f"could not remove {node.name}:{partial}: {error_text(exc)}")
        return False
    return True


def _source_doc(decision: Decision, cluster: ClusterState) -> dict[str, Any]:
    return {
        "node": decision.node,
        "role": decision.role,
        "reason": decision.reason,
        "lag_bytes": decision.lag_bytes,
        "facts_from": cluster.via,
        "pair": states_line(cluster.nodes),
    }


# --- logical --------------------------------------------------------------------------------


def _logical(pair: Pair, node: Node, partial: str, log: Log) -> _Taken:
    dump_name = f"{pair.database}.dump"
    dump = posixpath.join(partial, dump_name)
    status = posixpath.join(partial, STATUS_FILE)
    script = snapshot_dump_script(pg_dump_argv(node.pg, pair.database, dump), status)
    for attempt in (1, 2):
        try:
            out = _dump_in_snapshot(node, pair.database, script, dump, status)
            break
        except CommandFailed as exc:
            if not is_recovery_conflict(exc.stderr):
                raise
            if attempt == 2:
                raise StepFailed(
                    f"{node.name}: the dump was cancelled twice by recovery conflicts — "
                    + CONFLICT_HINT.format(node=node.name)
                ) from exc
            log(f"{node.name}: dump cancelled by a recovery conflict; retrying once ("
                + CONFLICT_HINT.format(node=node.name) + ")")
            node.transport.run(["find", partial, "-mindepth", "1", "-delete"])
    facts = dict(out.facts)
    as_postgres(node, pg_dumpall_globals_argv(node.pg, posixpath.join(partial, GLOBALS)))
    # The archive's table of contents must read back before the backup counts as taken.
    as_postgres(node, pg_restore_list_argv(node.pg.bin_dir, dump))
    names = [dump_name, GLOBALS]
    node.transport.run(["chmod", "0600", "--", *[posixpath.join(partial, n) for n in names]])
    tables = tuple({"schema": t.schema, "table": t.table, "rows": t.rows} for t in out.tables)
    return _Taken(
        files=names,
        extra={
            "database": {k: facts.get(k) for k in ("owner", "encoding", "collate", "ctype")}
            | {"name": pair.database},
            "snapshot": str(facts.get("snapshot")),
            "tables": tables,
        },
        role="standby" if facts.get("in_recovery") else "primary",
        postgres=_pg_doc(facts),
        tools={"pg_dump": _tool(node, "pg_dump")},
    )


def _dump_in_snapshot(
    node: Node, database: str, script: str, dump: str, status: str
) -> DumpOutput:
    r = psql(node, script, database=database, timeout=LONG_TIMEOUT)
    try:
        code_text = node.transport.read_file(status).decode().strip()
    except FileNotFoundError:
        raise StepFailed(f"{node.name}: pg_dump did not run (no {status})") from None
    if code_text != "0":
        argv = pg_dump_argv(node.pg, database, dump)
        raise CommandFailed(node.name, argv, int(code_text or 1), r.stderr)
    node.transport.run(["rm", "-f", "--", status])
    return parse_dump_output(r.stdout)


# --- physical -------------------------------------------------------------------------------


def _physical(node: Node, partial: str, backup_id: str) -> _Taken:
    facts = parse_probe(psql(node, PROBE_SQL).stdout)
    out_dir = posixpath.join(partial, PHYSICAL_DIR)
    try:
        as_postgres(node, pg_basebackup_argv(node.pg, out_dir, f"hapair {backup_id}"),
                    timeout=LONG_TIMEOUT)
    except CommandFailed as exc:
        if "replication connection" in exc.stderr and "pg_hba.conf" in exc.stderr:
            raise StepFailed(
                f"{node.name}: pg_basebackup was refused: pg_hba.conf needs "
                f"{_replication_hba(node)} ({error_text(exc)})"
            ) from exc
        raise
    names = sorted(node.transport.run(
        ["find", out_dir, "-mindepth", "1", "-maxdepth", "1", "-type", "f", "-printf", "%f\\n"]
    ).stdout.split())
    if "backup_manifest" not in names or "base.tar.gz" not in names:
        raise StepFailed(f"{node.name}: pg_basebackup left no backup_manifest/base.tar.gz")
    tail = node.transport.run(["tail", "-c", "4096", posixpath.join(out_dir, "backup_manifest")])
    return _Taken(
        files=[posixpath.join(PHYSICAL_DIR, n) for n in names],
        extra={"wal": tuple(parse_wal_ranges(tail.stdout)),
               "extra": {"notes": list(PHYSICAL_NOTES)}},
        role="standby" if facts.get("in_recovery") else "primary",
        postgres=_pg_doc(facts),
        tools={"pg_basebackup": _tool(node, "pg_basebackup")},
    )


def _replication_hba(node: Node) -> str:
    if node.container is None:
        return f"`local replication {node.os_user} peer`"
    return (f"`local replication {node.pg.user} peer map=hapair` (hapair's generated "
            "patroni.yml has it; on a pair generated before, add it to postgresql.pg_hba there "
            "and reload Patroni)")


def _pg_doc(facts: dict[str, Any]) -> dict[str, Any]:
    return {k: facts.get(k) for k in ("server_version", "server_version_num")}


def _tool(node: Node, tool: str) -> str:
    return parse_tool_version(node.transport.run(version_argv(node.pg.bin_dir, tool)).stdout)


# --- dry run and retention ------------------------------------------------------------------


def _planned_commands(pair: Pair, node: Node, kind: Kind, backup_id: str) -> list[list[str]]:
    partial = store.backup_path(node, backup_id, partial=True)
    if kind == "logical":
        dump = posixpath.join(partial, f"{pair.database}.dump")
        return [
            [*pg_dump_argv(node.pg, pair.database, dump), "--snapshot=<exported by psql>"],
            pg_dumpall_globals_argv(node.pg, posixpath.join(partial, GLOBALS)),
            pg_restore_list_argv(node.pg.bin_dir, dump),
        ]
    out_dir = posixpath.join(partial, PHYSICAL_DIR)
    return [pg_basebackup_argv(node.pg, out_dir, f"hapair {backup_id}")]


def _retention(pair: Pair, req: BackupRequest, source: Node, now: datetime, *, apply: bool,
               log: Log) -> list[dict[str, Any]]:
    if req.keep is None:
        return []
    plans: list[dict[str, Any]] = []
    for node in pair.nodes:
        try:
            entries = store.list_entries(node)
        except HapairError as exc:  # its backups are pruned on a later run
            log(f"retention skipped on {node.name}: {error_text(exc)}")
            plans.append({"node": node.name, "skipped": error_text(exc)})
            continue
        # A dry run has not added the new backup yet: count it in.
        pending = 1 if (not apply and node is source) else 0
        plan = plan_retention(node.name, entries, req.kind, req.keep, now, pending=pending)
        if apply:
            _apply(node, plan, log)
        plans.append(plan.to_dict())
    return plans


def _apply(node: Node, plan: RetentionPlan, log: Log) -> None:
    for verdict in plan.delete:
        log(f"retention: removing {node.name}:{verdict.entry.path} ({verdict.reason})")
        store.remove(node, verdict.entry.path)
    if plan.delete:
        audit(node, plan.delete[0].entry.id, f"retention/{node.name}/{plan.kind}",
              f"removed {len(plan.delete)}")
