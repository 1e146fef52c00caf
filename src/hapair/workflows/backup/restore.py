"""`hapair restore BACKUP_ID --into NEW_DB`: a logical backup into a NEW database, checked.

The live database is never written: the target must not exist (refused, exit 3), is created
here from template0 on the primary, and is filled with pg_restore. Its row counts must equal
the manifest's (else exit 4; the database is left for inspection). Switching the app to it
is the operator's decision; the result says how.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

from hapair.components.pgdump import require_db_name
from hapair.errors import HapairError, Refused, UsageError
from hapair.workflows.backup import store
from hapair.workflows.backup.dbops import (
    check_reachable,
    count_rows,
    create_database,
    database_exists,
    drop_database,
    restore_dump,
)
from hapair.workflows.backup.model import compare_counts
from hapair.workflows.backup.nodes import (
    Log,
    Node,
    Pair,
    audit,
    error_text,
    no_log,
    observe,
    the_primary,
)

RESERVED_PREFIX = "hapair_verify_"
RESERVED = ("postgres", "template0", "template1")


def check_target_name(pair: Pair, into: str) -> str:
    require_db_name(into, "--into")
    if into == pair.database:
        raise Refused(
            f"--into {into} is the live database: restores go into a NEW database, never on "
            "top of the one the app uses"
        )
    if into in RESERVED or into.startswith(RESERVED_PREFIX):
        raise UsageError(f"--into {into}: reserved name; pick another")
    return into


def restore_backup(
    pair: Pair,
    ref: str,
    into: str,
    *,
    confirm: Callable[[str], bool],
    log: Log = no_log,
) -> dict[str, Any]:
    check_target_name(pair, into)
    holder, entry, warnings = store.find_backup(pair, ref, log)
    m = entry.manifest
    assert m is not None
    if m.kind != "logical" or m.database is None:
        raise UsageError(
            f"backup {entry.id} is {m.kind}: a physical backup is restored as a new data "
            "directory, by hand (docs/backups.md, 'Restoring a physical backup')"
        )
    problems = store.check_files(holder, entry)
    if problems:
        raise Refused(f"backup {entry.id} on {holder.name} is damaged: {'; '.join(problems)}")
    primary = the_primary(pair, observe(pair, log), "a restore")
    check_reachable(pair, holder, primary)
    if database_exists(primary, into):
        raise Refused(
            f"database {into} already exists on {primary.name}: hapair restores only into a "
            "new database; pick another --into name (nothing was changed)"
        )
    prompt = (
        f"Restore backup {entry.id} (database {m.database['name']}, taken on "
        f"{m.source.get('node')}) into the NEW database {into} on {primary.name}? "
        f"The live database {pair.database} is not touched."
    )
    if not confirm(prompt):
        raise Refused("restore not confirmed; nothing was changed")
    props = {k: v for k, v in m.database.items() if k in ("owner", "encoding", "collate", "ctype")}
    create_database(primary, into, props)
    dump = posixpath.join(entry.path, f"{m.database['name']}.dump")
    try:
        log(f"restoring {entry.id} from {holder.where} into {into} on {primary.where}")
        restore_dump(pair, holder, primary, dump, into)
    except BaseException:
        _drop_new(primary, into, log)  # ours, created a moment ago, never used by the app
        audit(primary, entry.id, f"restore/{primary.name}/{into}", "failed", quiet=True)
        raise
    problems = compare_counts(m.row_counts(), count_rows(primary, into))
    audit(primary, entry.id, f"restore/{primary.name}/{into}", "failed" if problems else "ok")
    return {
        "id": entry.id,
        "from_node": holder.name,
        "database": into,
        "node": primary.name,
        "ok": not problems,
        "tables_compared": len(m.row_counts()),
        "problems": problems,
        "warnings": warnings,
        "next_steps": switch_steps(pair, into, primary) if not problems else [
            f"{into} is left in place for inspection; drop it with "
            f"`DROP DATABASE {into};` on {primary.name} when done"
        ],
    }


def _drop_new(primary: Node, into: str, log: Log) -> None:
    try:
        drop_database(primary, into)
    except HapairError as exc:
        log(f"the partly restored database {into} could not be dropped: {error_text(exc)}")


def switch_steps(pair: Pair, into: str, primary: Node | None = None) -> list[str]:
    """How to put the restored database in service (hapair does not do it for you)."""
    live = pair.database
    env = f" ({pair.backend_env_file})" if pair.backend_env_file else ""
    where = (f"in {primary.container} on {primary.name}: psql -U {primary.pg.user} -d {into}"
             if primary is not None and primary.container else f"psql -d {into}")
    return [
        f"Check the data in {into} ({where}) before anything else.",
        "Swap names in a short maintenance window (stop the app's writes first; both "
        "databases must have no open connections): "
        f"ALTER DATABASE {live} RENAME TO {live}_before_restore; "
        f"ALTER DATABASE {into} RENAME TO {live};",
        "The swap needs no pg_hba change: the app's role is allowed on the database named "
        f"{live} only. Pointing the app at {into} instead means changing its database name"
        f"{env} on both nodes AND the pg_hba rules.",
        f"{live}_before_restore stays until you drop it; hapair never drops or overwrites "
        "a live database.",
    ]
