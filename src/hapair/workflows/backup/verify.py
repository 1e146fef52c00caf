"""`hapair backup verify`: prove a backup restores, and record the verdict in its manifest.

- Every file: present, same sha256 as when it was written.
- Logical: `pg_restore -l` reads the archive; it is restored into a fresh scratch database
  `hapair_verify_<id>` on the primary (the only writable node) and its row counts must equal
  the manifest's, which were counted in the dump's own snapshot. The scratch database is
  dropped afterwards, also when something fails.
- Physical: the tarballs are extracted into a scratch directory beside the backup and
  `pg_verifybackup` checks every file against backup_manifest and the WAL range.

The verdict is "passed" or "failed" (problems with the backup: exit 4). A step that cannot
run (node unreachable, createdb refused) raises instead: exit 1, no verdict recorded.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from hapair.components.pgdump import pg_restore_list_argv, pg_verifybackup_argv
from hapair.errors import CommandFailed, HapairError, StepFailed
from hapair.workflows.backup import store
from hapair.workflows.backup.dbops import (
    check_reachable,
    count_rows,
    create_database,
    drop_database,
    restore_dump,
)
from hapair.workflows.backup.model import (
    BackupEntry,
    Kind,
    compare_counts,
    iso,
    scratch_db_name,
)
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
    the_primary,
)
from hapair.workflows.backup.take import PHYSICAL_DIR


def verify_backup(
    pair: Pair,
    ref: str = "latest",
    *,
    kind: Kind | None = None,
    log: Log = no_log,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    holder, entry, warnings = store.find_backup(pair, ref, log, kind)
    assert entry.manifest is not None
    log(f"verifying {entry.kind} backup {entry.id} on {holder.where}")
    extra: dict[str, Any] = {}
    problems = store.check_files(holder, entry)
    if not problems and entry.kind == "logical":
        problems, extra = _verify_logical(pair, holder, entry, log)
    elif not problems:
        problems = _verify_physical(holder, entry, log)
    verdict = {
        "verified_at": iso(now()),
        "result": "failed" if problems else "passed",
        "method": _method(entry.kind),
        "problems": problems[:50],
        **extra,
    }
    manifest = replace(entry.manifest, verification=verdict)
    store.write_manifest(holder, entry.path, manifest)
    audit(holder, entry.id, f"verify/{holder.name}/{entry.kind}", verdict["result"])
    log(f"backup {entry.id}: verification {verdict['result']}")
    return {
        "id": entry.id,
        "kind": entry.kind,
        "node": holder.name,
        "path": entry.path,
        "ok": not problems,
        "verification": verdict,
        "warnings": warnings,
    }


def _method(kind: Kind) -> str:
    if kind == "logical":
        return "sha256 + pg_restore -l + restore into a scratch database + row counts"
    return "sha256 + extract + pg_verifybackup"


def _verify_logical(
    pair: Pair, holder: Node, entry: BackupEntry, log: Log
) -> tuple[list[str], dict[str, Any]]:
    m = entry.manifest
    assert m is not None and m.database is not None
    dump = posixpath.join(entry.path, f"{m.database['name']}.dump")
    try:
        as_postgres(holder, pg_restore_list_argv(holder.pg.bin_dir, dump))
    except CommandFailed as exc:
        return [f"pg_restore -l cannot read the archive: {error_text(exc)}"], {}
    primary = the_primary(pair, observe(pair, log), "verifying a logical backup")
    check_reachable(pair, holder, primary)
    scratch = scratch_db_name(entry.id)
    extra: dict[str, Any] = {"scratch_database": scratch, "restored_on": primary.name}
    drop_database(primary, scratch)  # a leftover of an interrupted verification
    props = {k: v for k, v in m.database.items() if k in ("encoding", "collate", "ctype")}
    create_database(primary, scratch, props)
    failing = True
    try:
        log(f"restoring into scratch database {scratch} on {primary.name}")
        try:
            restore_dump(pair, holder, primary, dump, scratch)
        except CommandFailed as exc:
            failing = False
            return [f"pg_restore into {scratch} failed: {error_text(exc)}"], extra
        problems = compare_counts(m.row_counts(), count_rows(primary, scratch))
        extra["tables_compared"] = len(m.row_counts())
        failing = False
        return problems, extra
    finally:
        _drop_scratch(primary, scratch, failing, log)


def _drop_scratch(primary: Node, scratch: str, failing: bool, log: Log) -> None:
    try:
        drop_database(primary, scratch)
    except HapairError as exc:
        if not failing:
            raise StepFailed(
                f"scratch database {scratch} could not be dropped on {primary.name}: {exc}"
            ) from exc
        log(f"scratch database {scratch} could not be dropped on {primary.name}: "
            f"{error_text(exc)}")


def _verify_physical(holder: Node, entry: BackupEntry, log: Log) -> list[str]:
    m = entry.manifest
    assert m is not None
    tars = [f.name for f in m.files if f.name.endswith(".tar.gz")]
    known = {f"{PHYSICAL_DIR}/base.tar.gz", f"{PHYSICAL_DIR}/pg_wal.tar.gz"}
    extra_tars = sorted(set(tars) - known)
    if extra_tars:
        raise StepFailed(
            f"backup {entry.id} has tablespace archives ({', '.join(extra_tars)}): verify it "
            "by hand (docs/backups.md)"
        )
    scratch = posixpath.join(holder.backup_dir, f".verify-{entry.id}")
    src = posixpath.join(entry.path, PHYSICAL_DIR)
    holder.transport.run(["rm", "-rf", "--", scratch])
    store.make_dir(holder, scratch)
    try:
        log(f"extracting {entry.id} into {holder.name}:{scratch} for pg_verifybackup")
        steps = [
            ("base.tar.gz", ["tar", "-xzf", f"{src}/base.tar.gz", "-C", scratch]),
            ("pg_wal", ["mkdir", "-p", f"{scratch}/pg_wal"]),
            ("pg_wal.tar.gz", ["tar", "-xzf", f"{src}/pg_wal.tar.gz", "-C", f"{scratch}/pg_wal"]),
            ("pg_verifybackup", pg_verifybackup_argv(
                holder.pg.bin_dir, f"{src}/backup_manifest", scratch)),
        ]
        problems = []
        for what, argv in steps:
            try:
                as_postgres(holder, argv, timeout=LONG_TIMEOUT)
            except CommandFailed as exc:
                problems = [f"{what}: {error_text(exc)}"]
                break
    except BaseException:
        _remove_quietly(holder, scratch, log)
        raise
    holder.transport.run(["rm", "-rf", "--", scratch])
    return problems


def _remove_quietly(holder: Node, path: str, log: Log) -> None:
    try:
        holder.transport.run(["rm", "-rf", "--", path])
    except HapairError as exc:  # the error in flight matters more; say what is left
        log(f"could not remove {holder.name}:{path}: {error_text(exc)}")
