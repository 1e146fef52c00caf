"""components/pgdump.py: exact argument lists, the snapshot script, and the parsers."""

from __future__ import annotations

import json

import pytest

from hapair.components import pgdump as p
from hapair.errors import StepFailed, UsageError

B = "/usr/lib/postgresql/15/bin"
LOCAL = p.PgConn(B, 5432, "/var/run/postgresql")
REMOTE = p.PgConn(B + "/", 5433, "10.99.0.11", "postgres")
PEER = ["-h", "/var/run/postgresql", "-p", "5432", "-U", "postgres", "-w"]

ARGV_CASES = [
    (
        p.pg_dump_argv(LOCAL, "cms", "/b/x.partial/cms.dump"),
        [f"{B}/pg_dump", *PEER, "-d", "cms", "-Fc", "--lock-wait-timeout=60s", "-f",
         "/b/x.partial/cms.dump"],
    ),
    (
        p.pg_dumpall_globals_argv(LOCAL, "/b/g.sql"),
        [f"{B}/pg_dumpall", *PEER, "--globals-only", "--no-role-passwords", "-f", "/b/g.sql"],
    ),
    (
        p.pg_restore_list_argv(B, "/b/cms.dump"),
        [f"{B}/pg_restore", "-l", "-f", "/dev/null", "/b/cms.dump"],
    ),
    (
        p.pg_restore_argv(REMOTE, "cms_new", "/b/cms.dump"),
        [f"{B}/pg_restore", "-h", "10.99.0.11", "-p", "5433", "-U", "postgres", "-w", "-d",
         "cms_new", "--exit-on-error", "/b/cms.dump"],
    ),
    (
        p.pg_basebackup_argv(LOCAL, "/b/x.partial/pgdata", "hapair X"),
        [f"{B}/pg_basebackup", *PEER, "-D", "/b/x.partial/pgdata", "-Ft", "-z", "-X", "stream",
         "--checkpoint=fast", "-l", "hapair X"],
    ),
    (
        p.pg_verifybackup_argv(B, "/b/x/pgdata/backup_manifest", "/b/.verify-x"),
        [f"{B}/pg_verifybackup", "-m", "/b/x/pgdata/backup_manifest", "/b/.verify-x"],
    ),
    (
        p.psql_argv(LOCAL, "postgres", {"name": "cms_new", "owner": "cms"}),
        [f"{B}/psql", *PEER, "-d", "postgres", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
         "-v", "name=cms_new", "-v", "owner=cms", "-f", "-"],
    ),
    (p.version_argv(B, "pg_dump"), [f"{B}/pg_dump", "--version"]),
    (p.sha256_argv(["/a", "/b"]), ["sha256sum", "--", "/a", "/b"]),
    (p.size_argv(["/a"]), ["stat", "-c", "%s %n", "--", "/a"]),
]


@pytest.mark.parametrize(("argv", "expected"), ARGV_CASES)
def test_argv(argv: list[str], expected: list[str]) -> None:
    assert argv == expected


def test_no_password_option_anywhere() -> None:
    for argv, _ in ARGV_CASES:
        assert not any(a.startswith(("--password", "PGPASSWORD")) or a == "-W" for a in argv)


def test_snapshot_script_dumps_inside_the_counting_transaction() -> None:
    dump = p.pg_dump_argv(LOCAL, "cms", "/b/x y.partial/cms.dump")
    script = p.snapshot_dump_script(dump, "/b/x y.partial/.pg_dump.status").splitlines()
    assert script[:3] == [
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;",
        "SELECT pg_export_snapshot() AS hapair_snapshot \\gset",
        "\\setenv HAPAIR_SNAPSHOT :hapair_snapshot",
    ]
    bang = next(line for line in script if line.startswith("\\!"))
    assert bang == (
        f"\\! umask 077; {B}/pg_dump -h /var/run/postgresql -p 5432 -U postgres -w -d cms -Fc "
        "--lock-wait-timeout=60s -f '/b/x y.partial/cms.dump' --snapshot=\"$HAPAIR_SNAPSHOT\"; "
        "echo $? > '/b/x y.partial/.pg_dump.status'"
    )
    # counts (\gexec) come before the dump, COMMIT after it: one snapshot for both
    gexec = next(i for i, line in enumerate(script) if line.endswith("\\gexec"))
    assert gexec < script.index(bang) < script.index("COMMIT;")


@pytest.mark.parametrize(
    ("keys", "sql"),
    [
        (["name"], 'CREATE DATABASE :"name" TEMPLATE template0;\n'),
        (
            ["name", "owner", "encoding", "collate", "ctype"],
            'CREATE DATABASE :"name" OWNER :"owner" TEMPLATE template0 ENCODING :\'encoding\' '
            "LC_COLLATE :'collate' LC_CTYPE :'ctype';\n",
        ),
    ],
)
def test_create_database_sql(keys: list[str], sql: str) -> None:
    assert p.create_database_sql(keys) == sql


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        (("10.0.0.1", 5432, "postgres", "simple"), "10.0.0.1:5432:*:postgres:simple\n"),
        (("::1", 5432, "postgres", "a:b\\c"), "\\:\\:1:5432:*:postgres:a\\:b\\\\c\n"),
    ],
)
def test_passfile_line_escapes(fields: tuple[str, int, str, str], line: str) -> None:
    assert p.passfile_line(*fields) == line


def test_passfile_refuses_line_breaks_without_echoing_the_value() -> None:
    with pytest.raises(UsageError) as err:
        p.passfile_line("h", 1, "postgres", "sec\nret")
    assert "sec" not in str(err.value)


@pytest.mark.parametrize("name", ["cms", "cms_restored_2025", "_x"])
def test_db_name_ok(name: str) -> None:
    assert p.require_db_name(name) == name


@pytest.mark.parametrize("name", ["", "Cms", "1cms", "cms-new", "cms;drop", "a" * 64, "x y"])
def test_db_name_refused(name: str) -> None:
    with pytest.raises(UsageError):
        p.require_db_name(name)


def test_parse_dump_output() -> None:
    text = "\n".join([
        json.dumps({"in_recovery": True, "snapshot": "00000003-0000001B-1"}),
        json.dumps({"schema": "z", "table": "b", "rows": 2}),
        json.dumps({"schema": "Odd Schema", "table": "Mixed|Name", "rows": 0}),
        "",
    ])
    out = p.parse_dump_output(text)
    assert out.facts == {"in_recovery": True, "snapshot": "00000003-0000001B-1"}
    assert [(t.key, t.rows) for t in out.tables] == [("Odd Schema.Mixed|Name", 0), ("z.b", 2)]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "facts line is missing"),
        ('{"a": 1}\n{"b": 2}\n', "more than one facts line"),
        ('{"a": 1}\nBEGIN\n', "unexpected output line"),
        ('{"a": 1}\n{"schema": "s", "table": "t", "rows": "7"}\n', "bad count"),
    ],
)
def test_parse_dump_output_rejects(text: str, problem: str) -> None:
    with pytest.raises(StepFailed, match=problem):
        p.parse_dump_output(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [("0/3000000", 0x3000000), ("16/B374D848", (0x16 << 32) + 0xB374D848), (None, None),
     ("junk", None), ("x/y", None)],
)
def test_parse_lsn(text: object, value: int | None) -> None:
    assert p.parse_lsn(text) == value


def test_parse_sha256sum_and_sizes() -> None:
    a, b = "a" * 64, "b" * 64
    assert p.parse_sha256sum(f"{a}  /x/one\n\\{b}  /x/t\\nwo\nsha256sum: /x/3: No such file\n") \
        == {"/x/one": a, "/x/t\\nwo": b}
    assert p.parse_sizes("12 /x/one\n0 /x/with space\nstat: cannot\n") == {
        "/x/one": 12, "/x/with space": 0}


def test_parse_wal_ranges_from_the_manifest_tail() -> None:
    tail = ('e": "base/1/2", "Size": 8192 },\n{ "Path": "global/pg_control", "Size": 8192 }\n],\n'
            '"WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/3000000" '
            '}\n],\n"Manifest-Checksum": "abc"}\n')
    assert p.parse_wal_ranges(tail) == [
        {"timeline": 1, "start_lsn": "0/2000028", "end_lsn": "0/3000000"}
    ]
    with pytest.raises(StepFailed, match="no WAL-Ranges"):
        p.parse_wal_ranges('{"Files": []}')


@pytest.mark.parametrize(
    ("stderr", "conflict"),
    [
        ("ERROR:  canceling statement due to conflict with recovery\nDETAIL:  User query "
         "might have needed to see row versions that must be removed.", True),
        ("FATAL:  terminating connection due to conflict with recovery", True),
        ('pg_dump: error: query failed: ERROR:  canceling statement due to conflict with '
         'recovery', True),
        ('psql: error: FATAL:  database "nope" does not exist', False),
        ("", False),
    ],
)
def test_recovery_conflict(stderr: str, conflict: bool) -> None:
    assert p.is_recovery_conflict(stderr) is conflict


def test_tool_version() -> None:
    assert p.parse_tool_version("pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n") == (
        "pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)")
    assert p.parse_tool_version("") == ""
