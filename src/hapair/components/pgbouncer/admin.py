"""PgBouncer admin console: statements, the psql argv to send them, and CSV parsers.

The password reaches psql through a 0600 passfile named by PGPASSFILE (a path, not a
secret: it goes in the transport's env). Output is `psql --csv`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from hapair.components.common import Check, require_name
from hapair.errors import StepFailed


def pause_sql(database: str) -> str:
    """Wait for running transactions to finish, then hold new queries (up to
    query_wait_timeout) with no server connection open."""
    return f"PAUSE {require_name(database, 'database')}"


def resume_sql(database: str) -> str:
    return f"RESUME {require_name(database, 'database')}"


def reconnect_sql(database: str) -> str:
    """Close server connections as soon as they are released (after a failover)."""
    return f"RECONNECT {require_name(database, 'database')}"


SHOW_POOLS = "SHOW POOLS"
SHOW_DATABASES = "SHOW DATABASES"


def admin_psql_argv(statement: str, admin_user: str, host: str = "127.0.0.1", port: int = 6432,
                    psql: str = "psql") -> list[str]:
    """Run one admin statement. Env: PGPASSFILE=<0600 file> (never the password)."""
    return [psql, "-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", str(port),
            "-U", require_name(admin_user, "admin user"), "-d", "pgbouncer", "-c", statement]


def _rows(text: str, what: str) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    if text.strip() and not rows and "database" not in text.splitlines()[0]:
        raise StepFailed(f"{what}: not CSV output")
    return rows


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


@dataclass(frozen=True)
class PoolState:
    database: str
    user: str
    cl_active: int
    cl_waiting: int
    sv_active: int
    sv_idle: int
    sv_used: int
    maxwait_s: int
    pool_mode: str


def parse_show_pools(text: str) -> tuple[PoolState, ...]:
    return tuple(
        PoolState(r.get("database", ""), r.get("user", ""), _int(r.get("cl_active")),
                  _int(r.get("cl_waiting")), _int(r.get("sv_active")), _int(r.get("sv_idle")),
                  _int(r.get("sv_used")), _int(r.get("maxwait")), r.get("pool_mode", ""))
        for r in _rows(text, "SHOW POOLS")
    )


@dataclass(frozen=True)
class DatabaseState:
    name: str
    host: str
    port: int
    database: str
    paused: bool
    disabled: bool
    current_connections: int


def parse_show_databases(text: str) -> tuple[DatabaseState, ...]:
    return tuple(
        DatabaseState(r.get("name", ""), r.get("host", ""), _int(r.get("port")),
                      r.get("database", ""), r.get("paused") == "1", r.get("disabled") == "1",
                      _int(r.get("current_connections")))
        for r in _rows(text, "SHOW DATABASES")
    )


def _find(dbs: Sequence[DatabaseState], name: str) -> DatabaseState | None:
    return next((d for d in dbs if d.name == name), None)


def check_paused(dbs: Sequence[DatabaseState], pools: Sequence[PoolState], name: str) -> Check:
    """Paused and drained: no server connection in use, so the primary can change."""
    db = _find(dbs, name)
    if db is None:
        return Check.failed(f"pgbouncer has no database {name!r}")
    if not db.paused:
        return Check.failed(f"pgbouncer database {name} is not paused")
    busy = sum(p.sv_active + p.sv_used for p in pools if p.database == name)
    if busy:
        return Check.failed(f"pgbouncer {name} paused but {busy} server connection(s) still busy")
    waiting = sum(p.cl_waiting for p in pools if p.database == name)
    return Check.passed(f"pgbouncer {name} paused; {waiting} client(s) waiting")


def check_resumed(dbs: Sequence[DatabaseState], name: str) -> Check:
    db = _find(dbs, name)
    if db is None:
        return Check.failed(f"pgbouncer has no database {name!r}")
    if db.paused or db.disabled:
        return Check.failed(f"pgbouncer {name} is {'paused' if db.paused else 'disabled'}")
    return Check.passed(f"pgbouncer {name} serves queries")
