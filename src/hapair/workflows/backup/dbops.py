"""Database-level steps shared by verify and restore: create a NEW database, restore a dump
into it, count its rows, drop a scratch database. Never the live database: every name passes
require_db_name and the callers refuse the application's database.

A dump lives on the node that took it, often the standby; a database can only be created on
the primary. When they differ, pg_restore runs on the dump's node and connects to the
primary's address as the superuser, with the password in a 0600 passfile that exists only
for the duration of the restore (never in argv or the environment).
"""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Mapping

from hapair.components.pgdump import (
    DATABASE_EXISTS_SQL,
    DROP_DATABASE_SQL,
    PgConn,
    count_rows_script,
    create_database_sql,
    parse_dump_output,
    passfile_line,
    pg_restore_argv,
    require_db_name,
)
from hapair.errors import CommandFailed, HapairError, Refused, StepFailed
from hapair.workflows.backup.nodes import LONG_TIMEOUT, STEP_TIMEOUT, Node, Pair, psql


def database_exists(primary: Node, name: str) -> bool:
    out = psql(primary, DATABASE_EXISTS_SQL, variables={"name": require_db_name(name)}).stdout
    return out.strip() not in ("", "0")


def create_database(primary: Node, name: str, props: Mapping[str, str]) -> None:
    """From template0 with the source's encoding/locale; owner only when given."""
    variables = {"name": require_db_name(name)}
    for key in ("owner", "encoding", "collate", "ctype"):
        if props.get(key):
            variables[key] = str(props[key])
    try:
        psql(primary, create_database_sql(variables), variables=variables)
    except CommandFailed as exc:
        if "already exists" in exc.stderr:
            raise Refused(f"database {name} already exists on {primary.name}") from None
        raise


def drop_database(primary: Node, name: str) -> None:
    psql(primary, DROP_DATABASE_SQL, variables={"name": require_db_name(name)})


def count_rows(primary: Node, name: str) -> dict[str, int]:
    out = psql(primary, count_rows_script(), database=require_db_name(name),
               timeout=LONG_TIMEOUT).stdout
    return {t.key: t.rows for t in parse_dump_output(out).tables}


def check_reachable(pair: Pair, holder: Node, primary: Node) -> None:
    """Before creating anything: can the dump's node restore into the primary?"""
    if holder.name != primary.name and pair.superuser_password is None:
        raise Refused(
            f"the backup is on {holder.name} and the primary is {primary.name}: restoring "
            "across nodes needs services.postgres.superuser_password"
        )


def restore_dump(pair: Pair, holder: Node, primary: Node, dump_path: str, name: str) -> None:
    """pg_restore the dump on `holder` into database `name` on `primary`."""
    require_db_name(name)
    if holder.name == primary.name:
        holder.transport.run(
            pg_restore_argv(holder.pg, name, dump_path), user=holder.os_user, timeout=LONG_TIMEOUT
        )
        return
    check_reachable(pair, holder, primary)
    assert pair.superuser_password is not None
    conn = PgConn(holder.pg.bin_dir, primary.pg.port, primary.address, pair.superuser)
    passfile = posixpath.join(holder.backup_dir, f".pgpass-{uuid.uuid4().hex[:12]}")
    line = passfile_line(primary.address, primary.pg.port, pair.superuser,
                         pair.superuser_password.reveal())
    holder.transport.write_file(passfile, line, mode=0o600, owner=holder.os_user)
    try:
        holder.transport.run(
            pg_restore_argv(conn, name, dump_path), user=holder.os_user,
            env={"PGPASSFILE": passfile}, timeout=LONG_TIMEOUT,
        )
    finally:
        try:
            holder.transport.run(["rm", "-f", "--", passfile], timeout=STEP_TIMEOUT)
        except HapairError as exc:  # a password left on disk outranks any error in flight
            raise StepFailed(f"{holder.name}: could not remove the passfile {passfile} "
                             f"(it holds the superuser password): remove it by hand: {exc}"
                             ) from exc
