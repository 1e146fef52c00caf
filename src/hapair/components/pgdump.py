"""PostgreSQL backup tools as data: argv builders, psql scripts and parsers. Pure, no I/O.

Every client runs as the postgres OS user on the node and reaches the server over its Unix
socket with peer authentication: no password exists anywhere in these commands. `-w` makes a
tool fail instead of waiting for a password prompt that nobody would answer.

Row counts that match a logical dump: psql opens a REPEATABLE READ transaction, exports its
snapshot, counts the rows of every table in it, and runs pg_dump with `--snapshot` from
inside that same session (`\\!`), so the dump and the counts see exactly the same data.
pg_dump's exit status comes back through a file, because psql 15 ignores the status of `\\!`.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from hapair.errors import StepFailed, UsageError

DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SNAPSHOT_ENV = "HAPAIR_SNAPSHOT"
# pg_dump gives up instead of queueing behind an exclusive lock (and blocking the app behind it).
LOCK_WAIT_TIMEOUT = "60s"


@dataclass(frozen=True)
class PgConn:
    """How a client on a node reaches a server: a socket directory (peer) or an address."""

    bin_dir: str
    port: int
    host: str  # "/var/run/postgresql" (peer auth) or "10.99.0.11" (password from a passfile)
    user: str = "postgres"

    def tool(self, name: str) -> str:
        return f"{self.bin_dir.rstrip('/')}/{name}"

    def args(self) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user, "-w"]


def require_db_name(name: str, what: str = "database name") -> str:
    """Plain lowercase identifiers only: they need no quoting in SQL, argv or file names."""
    if not DB_NAME.match(name):
        raise UsageError(
            f"{what} {name!r}: use lowercase letters, digits and '_' (not starting with a "
            "digit, at most 63 characters)"
        )
    return name


# --- argv -----------------------------------------------------------------------------------


def psql_argv(conn: PgConn, database: str, variables: Mapping[str, str] | None = None) -> list[str]:
    """psql reading its script from stdin; -X ignores ~/.psqlrc, -At prints bare values.
    Values given as variables are quoted by psql itself (:'v' literal, :"v" identifier)."""
    argv = [conn.tool("psql"), *conn.args(), "-d", database, "-X", "-q", "-A", "-t"]
    argv += ["-v", "ON_ERROR_STOP=1"]
    for key, value in sorted((variables or {}).items()):
        argv += ["-v", f"{key}={value}"]
    return [*argv, "-f", "-"]


def pg_dump_argv(conn: PgConn, database: str, out_file: str) -> list[str]:
    """Custom format (-Fc): compressed, restorable table by table, listable with -l."""
    return [
        conn.tool("pg_dump"), *conn.args(), "-d", database, "-Fc",
        f"--lock-wait-timeout={LOCK_WAIT_TIMEOUT}", "-f", out_file,
    ]


def pg_dumpall_globals_argv(conn: PgConn, out_file: str) -> list[str]:
    """Roles and tablespaces without role passwords: no secret ever lands in a backup."""
    return [
        conn.tool("pg_dumpall"), *conn.args(), "--globals-only", "--no-role-passwords",
        "-f", out_file,
    ]


def pg_restore_list_argv(bin_dir: str, dump_file: str) -> list[str]:
    """Read the archive's table of contents (fails on a truncated or foreign file)."""
    return [f"{bin_dir.rstrip('/')}/pg_restore", "-l", "-f", "/dev/null", dump_file]


def pg_restore_argv(conn: PgConn, database: str, dump_file: str) -> list[str]:
    """Into an existing, empty database; the first error stops it (no half-silent restore)."""
    return [conn.tool("pg_restore"), *conn.args(), "-d", database, "--exit-on-error", dump_file]


def pg_basebackup_argv(conn: PgConn, out_dir: str, label: str) -> list[str]:
    """Tar + gzip, WAL streamed alongside, fast checkpoint; writes backup_manifest too."""
    return [
        conn.tool("pg_basebackup"), *conn.args(), "-D", out_dir, "-Ft", "-z", "-X", "stream",
        "--checkpoint=fast", "-l", label,
    ]


def pg_verifybackup_argv(bin_dir: str, manifest: str, data_dir: str) -> list[str]:
    """Checks every file against backup_manifest and the WAL range with pg_waldump."""
    return [f"{bin_dir.rstrip('/')}/pg_verifybackup", "-m", manifest, data_dir]


def version_argv(bin_dir: str, tool: str) -> list[str]:
    return [f"{bin_dir.rstrip('/')}/{tool}", "--version"]


def sha256_argv(paths: Sequence[str]) -> list[str]:
    return ["sha256sum", "--", *paths]


def size_argv(paths: Sequence[str]) -> list[str]:
    return ["stat", "-c", "%s %n", "--", *paths]


# --- SQL ------------------------------------------------------------------------------------

# One query per permanent ordinary table (partitions included: they hold the rows), printed as
# one JSON object per line, so any schema or table name parses back safely. Unlogged tables
# are left out: a standby cannot read them.
COUNT_ROWS_SQL = r"""SELECT format(
  'SELECT json_build_object(%L, %L, %L, %L, %L, count(*)) FROM %I.%I',
  'schema', n.nspname, 'table', c.relname, 'rows', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
ORDER BY n.nspname, c.relname \gexec
"""

_DB_FACTS = """SELECT json_build_object(
  'in_recovery', pg_is_in_recovery(),
  'server_version', current_setting('server_version'),
  'server_version_num', current_setting('server_version_num')::int,
  'database', current_database(),
  'owner', pg_get_userbyid(d.datdba),
  'encoding', pg_encoding_to_char(d.encoding),
  'collate', d.datcollate,
  'ctype', d.datctype{extra})
FROM pg_database d WHERE d.datname = current_database();
"""

# What a node is: primary or standby, how far it has replayed, whether it streams.
PROBE_SQL = """SELECT json_build_object(
  'in_recovery', pg_is_in_recovery(),
  'lsn', CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
              ELSE pg_current_wal_lsn() END,
  'receiver', (SELECT status FROM pg_stat_wal_receiver LIMIT 1),
  'server_version', current_setting('server_version'),
  'server_version_num', current_setting('server_version_num')::int);
"""

DATABASE_EXISTS_SQL = "SELECT count(*) FROM pg_database WHERE datname = :'name';\n"


def snapshot_dump_script(dump_argv: Sequence[str], status_file: str) -> str:
    """The psql script of a logical backup: facts + counts + pg_dump, all in one snapshot."""
    line = shlex.join(dump_argv)
    return "\n".join([
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;",
        "SELECT pg_export_snapshot() AS hapair_snapshot \\gset",
        f"\\setenv {SNAPSHOT_ENV} :hapair_snapshot",
        _DB_FACTS.format(extra=",\n  'snapshot', :'hapair_snapshot'").rstrip(),
        COUNT_ROWS_SQL.rstrip(),
        # umask: the dump is born 0600. The status file tells pg_dump's exit code.
        f'\\! umask 077; {line} --snapshot="${SNAPSHOT_ENV}"; echo $? > {shlex.quote(status_file)}',
        "COMMIT;",
        "",
    ])


def count_rows_script() -> str:
    return _DB_FACTS.format(extra="") + COUNT_ROWS_SQL


def create_database_sql(keys: Iterable[str]) -> str:
    """CREATE DATABASE :"name" from template0, with the source's owner, encoding and locale
    when `keys` has them. psql quotes every value (they are passed as -v variables)."""
    given = set(keys)
    parts = ['CREATE DATABASE :"name"']
    if "owner" in given:
        parts.append('OWNER :"owner"')
    parts.append("TEMPLATE template0")
    for key, clause in (("encoding", "ENCODING"), ("collate", "LC_COLLATE"),
                        ("ctype", "LC_CTYPE")):
        if key in given:
            parts.append(f"{clause} :'{key}'")
    return " ".join(parts) + ";\n"


DROP_DATABASE_SQL = 'DROP DATABASE IF EXISTS :"name" WITH (FORCE);\n'


# --- parsers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableCount:
    schema: str
    table: str
    rows: int

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class DumpOutput:
    """What the snapshot script printed: the database's facts and its row counts."""

    facts: Mapping[str, object]
    tables: tuple[TableCount, ...]


def parse_json_lines(text: str, what: str) -> list[dict[str, object]]:
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise StepFailed(f"{what}: unexpected output line {line[:80]!r}") from None
        if not isinstance(row, dict):
            raise StepFailed(f"{what}: expected a JSON object per line, got {line[:80]!r}")
        rows.append(row)
    return rows


def parse_dump_output(text: str) -> DumpOutput:
    """Output of snapshot_dump_script / count_rows_script: one facts line, then tables."""
    facts: dict[str, object] | None = None
    tables = []
    for row in parse_json_lines(text, "row counts"):
        if "rows" in row:
            rows = row["rows"]
            if not isinstance(rows, int) or isinstance(rows, bool):
                raise StepFailed(f"row counts: bad count in {row!r}")
            tables.append(TableCount(str(row["schema"]), str(row["table"]), rows))
        elif facts is None:
            facts = row
        else:
            raise StepFailed("row counts: more than one facts line")
    if facts is None:
        raise StepFailed("row counts: the database facts line is missing")
    return DumpOutput(facts, tuple(sorted(tables, key=lambda t: (t.schema, t.table))))


def parse_probe(text: str) -> dict[str, object]:
    rows = parse_json_lines(text, "postgres probe")
    if len(rows) != 1:
        raise StepFailed(f"postgres probe: expected one line, got {len(rows)}")
    return rows[0]


def parse_lsn(text: object) -> int | None:
    """'16/B374D848' -> byte position; None for null or junk."""
    if not isinstance(text, str) or "/" not in text:
        return None
    high, _, low = text.partition("/")
    try:
        return (int(high, 16) << 32) + int(low, 16)
    except ValueError:
        return None


def parse_sha256sum(text: str) -> dict[str, str]:
    """`sha256sum -- a b` -> {path: hex}. A leading backslash marks an escaped name."""
    out = {}
    for line in text.splitlines():
        digest, sep, path = line.partition("  ")
        if not sep:
            digest, sep, path = line.partition(" *")
        digest = digest.lstrip("\\")
        if sep and re.fullmatch(r"[0-9a-f]{64}", digest):
            out[path] = digest
    return out


def parse_sizes(text: str) -> dict[str, int]:
    """`stat -c '%s %n'` -> {path: bytes}."""
    out = {}
    for line in text.splitlines():
        size, _, path = line.partition(" ")
        if size.isdigit() and path:
            out[path] = int(size)
    return out


def parse_tool_version(text: str) -> str:
    """'pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)' -> that line, trimmed."""
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def parse_wal_ranges(manifest_tail: str) -> list[dict[str, object]]:
    """The WAL-Ranges of a backup_manifest, read from its last few KiB (the file lists every
    data file first and can be large)."""
    at = manifest_tail.rfind('"WAL-Ranges"')
    if at < 0:
        raise StepFailed("backup_manifest: no WAL-Ranges (not a PostgreSQL 13+ backup manifest)")
    start = manifest_tail.find("[", at)
    try:
        ranges, _ = json.JSONDecoder().raw_decode(manifest_tail, start)
    except (json.JSONDecodeError, ValueError):
        raise StepFailed("backup_manifest: WAL-Ranges is not valid JSON") from None
    if not isinstance(ranges, list) or not ranges:
        raise StepFailed("backup_manifest: WAL-Ranges is empty")
    return [
        {"timeline": r.get("Timeline"), "start_lsn": r.get("Start-LSN"),
         "end_lsn": r.get("End-LSN")}
        for r in ranges if isinstance(r, dict)
    ]


_CONFLICT = re.compile(r"conflict with recovery", re.IGNORECASE)


def is_recovery_conflict(stderr: str) -> bool:
    """A query on a hot standby cancelled because replay needed what it was reading."""
    return bool(_CONFLICT.search(stderr))


def passfile_line(host: str, port: int, user: str, password: str) -> str:
    """One ~/.pgpass line; ':' and '\\' in fields are escaped as libpq requires."""

    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace(":", "\\:")

    if any(ch in field for field in (host, user, password) for ch in "\r\n"):
        raise UsageError("a line break cannot be written in a passfile field")
    return f"{esc(host)}:{port}:*:{esc(user)}:{esc(password)}\n"
