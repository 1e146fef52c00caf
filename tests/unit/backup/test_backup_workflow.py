"""The workflows over RecordingTransports: transcripts, cleanup on failure, retries, secrets."""

from __future__ import annotations

import json

import pytest
from backup_fakes import (
    BASE,
    BIN,
    ID,
    NOW,
    PASSWORD,
    SOCK,
    _stored,
    failing,
    make_pair,
    psql,
    script_logical,
    transports,
)

from hapair.errors import CommandFailed, Refused, StepFailed
from hapair.exec.recording import Reply
from hapair.workflows.backup import BackupRequest, take_backup
from hapair.workflows.backup.model import FORMAT
from hapair.workflows.backup.restore import restore_backup
from hapair.workflows.backup.verify import verify_backup

CONFLICT = ("ERROR:  canceling statement due to conflict with recovery\n"
            "DETAIL:  User query might have needed to see row versions that must be removed.\n")
PARTIAL = f"{BASE}/{ID}.partial"


def test_logical_backup_transcript_on_the_standby() -> None:
    t1, t2 = transports()
    script_logical(t2)
    lines: list[str] = []
    doc = take_backup(make_pair(t1, t2), BackupRequest(), log=lines.append, now=lambda: NOW)
    assert doc["ok"] and doc["node"] == "node2" and doc["id"] == ID
    runs = t2.commands
    assert runs[:3] == [
        tuple(psql()),  # the probe
        ("install", "-d", "-m", "0700", "-o", "postgres", "--", BASE),
        ("mkdir", "-m", "0700", "--", PARTIAL),
    ]
    dump_call = next(c for c in t2.calls if c.kind == "run" and c.argv == tuple(psql(db="cms")))
    assert dump_call.user == "postgres"
    assert b"pg_export_snapshot()" in (dump_call.input or b"")
    assert ("mv", "-T", "--", PARTIAL, f"{BASE}/{ID}") in runs
    assert runs.index(("mv", "-T", "--", PARTIAL, f"{BASE}/{ID}")) > runs.index(
        ("rm", "-f", "--", f"{PARTIAL}/.pg_dump.status"))
    manifest = json.loads(t2.text(f"{PARTIAL}/manifest.json"))
    assert t2.files[f"{PARTIAL}/manifest.json"].mode == 0o600
    assert manifest["format"] == FORMAT and manifest["source"]["role"] == "standby"
    assert manifest["tables"] == [
        {"schema": "public", "table": "articles", "rows": 500},
        {"schema": "public", "table": "sessions", "rows": 7},
    ]
    assert manifest["files"] == [
        {"name": "cms.dump", "bytes": 1234, "sha256": "a" * 64},
        {"name": "globals.sql", "bytes": 56, "sha256": "b" * 64},
    ]
    assert not any(c[0] != "psql" and "install" in c for c in t1.commands)  # node1: probe only
    assert t1.commands == [tuple(psql())]


def test_recovery_conflict_is_retried_once() -> None:
    t1, t2 = transports()
    script_logical(t2)
    t2.on(psql(db="cms"), failing(CONFLICT, 3), Reply(stdout=_dump_out()))
    lines: list[str] = []
    doc = take_backup(make_pair(t1, t2), BackupRequest(), log=lines.append, now=lambda: NOW)
    assert doc["ok"]
    assert ("find", PARTIAL, "-mindepth", "1", "-delete") in t2.commands
    assert any("retrying once" in line and "hot_standby_feedback" in line for line in lines)


def test_recovery_conflict_twice_fails_with_the_reason_and_cleans_up() -> None:
    t1, t2 = transports()
    script_logical(t2)
    t2.on(psql(db="cms"), failing(CONFLICT, 3))
    with pytest.raises(StepFailed) as err:
        take_backup(make_pair(t1, t2), BackupRequest(), now=lambda: NOW)
    assert "cancelled twice by recovery conflicts" in str(err.value)
    assert "hot_standby_feedback = on" in str(err.value) and "--from primary" in str(err.value)
    assert t2.commands[-3] == ("rm", "-rf", "--", PARTIAL)
    assert ("mv", "-T", "--", PARTIAL, f"{BASE}/{ID}") not in t2.commands
    assert t2.commands[-1] == ("tee", "-a", "--", "/var/log/hapair/audit.log")
    assert b"result=failed" in (t2.calls[-1].input or b"")


def test_pg_dump_exit_status_is_checked() -> None:
    t1, t2 = transports()
    script_logical(t2)
    t2.files[f"{PARTIAL}/.pg_dump.status"] = _stored(b"1\n")
    t2.on(psql(db="cms"), Reply(stdout=_dump_out(), stderr="pg_dump: error: disk full\n"))
    with pytest.raises(CommandFailed) as err:
        take_backup(make_pair(t1, t2), BackupRequest(), now=lambda: NOW)
    assert err.value.argv[0] == f"{BIN}/pg_dump" and err.value.returncode == 1
    assert "disk full" in str(err.value)
    assert ("rm", "-rf", "--", PARTIAL) in t2.commands


def test_no_source_is_refused_before_anything_is_written() -> None:
    t1, t2 = transports(standby=False)
    t1.on(psql(), failing("psql: error: connection refused", 2))
    with pytest.raises(Refused, match="no backup taken: no node to back up from"):
        take_backup(make_pair(t1, t2), BackupRequest(), now=lambda: NOW)
    assert t1.commands == [tuple(psql())] and t2.commands == [tuple(psql())]


def test_dry_run_writes_nothing() -> None:
    t1, t2 = transports()
    doc = take_backup(make_pair(t1, t2), BackupRequest(kind="physical", keep=3, dry_run=True),
                      now=lambda: NOW)
    assert doc["commands"] == [[
        f"{BIN}/pg_basebackup", "-h", SOCK, "-p", "5432", "-U", "postgres", "-w", "-D",
        f"{BASE}/20250301T021500Z-physical.partial/pgdata", "-Ft", "-z", "-X", "stream",
        "--checkpoint=fast", "-l", "hapair 20250301T021500Z-physical",
    ]]
    for t in (t1, t2):  # read-only commands only: probe, look at the backup directory
        assert {c[0] for c in t.commands} <= {f"{BIN}/psql", "test", "find"}
        assert not [c for c in t.calls if c.kind == "write_file"]


# --- verify / restore across nodes ----------------------------------------------------------

MANIFEST = {
    "format": FORMAT, "id": ID, "kind": "logical", "cluster": "cms",
    "source": {"node": "node2", "role": "standby"}, "postgres": {},
    "database": {"name": "cms", "owner": "cms", "encoding": "UTF8", "collate": "C",
                 "ctype": "C"},
    "files": [{"name": "cms.dump", "bytes": 3, "sha256": "c" * 64}],
    "tables": [{"schema": "public", "table": "articles", "rows": 500}],
    "started_at": "", "finished_at": "", "tools": {},
}
FINAL = f"{BASE}/{ID}"
DUMP = f"{FINAL}/cms.dump"


def _dump_out() -> str:
    from backup_fakes import DUMP_OUT

    return DUMP_OUT


def _holder_with_backup(t2):  # noqa: ANN001, ANN202
    t2.on(["find", BASE, "-mindepth", "1", "-maxdepth", "1", "-type", "d", "-printf", "%f\\n"],
          stdout=f"{ID}\n")
    t2.files[f"{FINAL}/manifest.json"] = _stored(json.dumps(MANIFEST).encode())
    t2.on(["sha256sum", "--", DUMP], stdout=f"{'c' * 64}  {DUMP}\n")


def _primary_counts(t1, db: str, rows: int) -> None:  # noqa: ANN001
    t1.on(psql(db=db), stdout=json.dumps({"in_recovery": False}) + "\n" + json.dumps(
        {"schema": "public", "table": "articles", "rows": rows}) + "\n")


def test_verify_restores_across_nodes_with_a_passfile_never_in_argv() -> None:
    t1, t2 = transports()
    t1.on(["test", "-d", BASE], returncode=1)
    _holder_with_backup(t2)
    scratch = "hapair_verify_20250301t021500z_logical"
    _primary_counts(t1, scratch, 500)
    doc = verify_backup(make_pair(t1, t2), "latest", now=lambda: NOW)
    assert doc["ok"] and doc["verification"]["result"] == "passed"
    # the passfile: written 0600 for postgres on the dump's node, used via PGPASSFILE, removed
    write = next(c for c in t2.calls if c.kind == "write_file" and ".pgpass-" in (c.path or ""))
    assert write.mode == 0o600 and write.owner == "postgres"
    assert write.data == b"10.99.0.11:5432:*:postgres:pw\\:with\\\\odd-chars\n"
    restore = next(c for c in t2.calls if c.kind == "run" and c.argv[0].endswith("pg_restore")
                   and "-d" in c.argv)
    assert restore.argv == (f"{BIN}/pg_restore", "-h", "10.99.0.11", "-p", "5432", "-U",
                            "postgres", "-w", "-d", scratch, "--exit-on-error", DUMP)
    assert restore.env == {"PGPASSFILE": write.path}
    assert ("rm", "-f", "--", write.path) in t2.commands
    for t in (t1, t2):
        for c in t.calls:
            assert PASSWORD not in " ".join(c.wrapped)
    # scratch database: dropped before (leftover) and after
    ddl = [(c.input or b"").split(b" ")[0] for c in t1.calls if b"DATABASE" in (c.input or b"")]
    assert ddl == [b"DROP", b"CREATE", b"DROP"]
    saved = json.loads(t2.text(f"{FINAL}/manifest.json"))
    assert saved["verification"]["result"] == "passed"
    assert saved["verification"]["verified_at"] == "2025-03-01T02:15:00Z"


def test_verify_drops_the_scratch_database_when_restore_fails() -> None:
    t1, t2 = transports()
    _holder_with_backup(t2)
    t2.on_prefix([f"{BIN}/pg_restore", "-h"], failing("pg_restore: error: could not read"))
    doc = verify_backup(make_pair(t1, t2), ID, now=lambda: NOW)
    assert not doc["ok"]
    assert doc["verification"]["problems"][0].startswith("pg_restore into hapair_verify_")
    last_sql = [c for c in t1.calls if c.kind == "run"][-1]
    assert b"DROP DATABASE" in (last_sql.input or b"")
    assert any(".pgpass-" in c[-1] and c[:2] == ("rm", "-f") for c in t2.commands)


def test_verify_without_a_primary_is_refused_and_records_nothing() -> None:
    t1, t2 = transports()
    t1.on(psql(), failing("psql: error: connection refused", 2))
    _holder_with_backup(t2)
    with pytest.raises(Refused, match="needs exactly one writable primary"):
        verify_backup(make_pair(t1, t2), ID)
    assert json.loads(t2.text(f"{FINAL}/manifest.json")).get("verification") is None


def test_restore_refuses_an_existing_database_before_changing_anything() -> None:
    t1, t2 = transports()
    _holder_with_backup(t2)
    t1.on(psql(name="cms_old"), stdout="1\n")
    asked: list[str] = []
    with pytest.raises(Refused, match="database cms_old already exists on node1"):
        restore_backup(make_pair(t1, t2), ID, "cms_old", confirm=lambda q: asked.append(q)
                       or True)
    assert asked == []
    assert not any(b"CREATE" in (c.input or b"") for c in t1.calls)


@pytest.mark.parametrize(("into", "error"), [
    ("cms", Refused), ("Cms", Exception), ("hapair_verify_x", Exception), ("postgres", Exception),
])
def test_restore_target_names(into: str, error: type[Exception]) -> None:
    t1, t2 = transports()
    with pytest.raises(error):
        restore_backup(make_pair(t1, t2), ID, into, confirm=lambda q: True)
    assert t1.calls == [] and t2.calls == []  # refused before reaching any node


def test_restore_needs_the_superuser_password_across_nodes() -> None:
    t1, t2 = transports()
    _holder_with_backup(t2)
    t1.on(psql(name="cms_new"), stdout="0\n")
    with pytest.raises(Refused, match="superuser_password"):
        restore_backup(make_pair(t1, t2, password=False), ID, "cms_new", confirm=lambda q: True)
    assert not any(b"CREATE" in (c.input or b"") for c in t1.calls)  # checked before


def test_restore_row_count_mismatch_is_reported() -> None:
    t1, t2 = transports()
    _holder_with_backup(t2)
    t1.on(psql(name="cms_new"), stdout="0\n")
    _primary_counts(t1, "cms_new", 499)
    doc = restore_backup(make_pair(t1, t2), ID, "cms_new", confirm=lambda q: True)
    assert not doc["ok"]
    assert doc["problems"] == ["public.articles: 500 rows in the backup, 499 after restore"]
    assert "left in place for inspection" in doc["next_steps"][0]


def test_restore_failure_drops_the_new_database_and_fails() -> None:
    t1, t2 = transports()
    _holder_with_backup(t2)
    t1.on(psql(name="cms_new"), stdout="0\n")
    t2.on_prefix([f"{BIN}/pg_restore", "-h"], failing("pg_restore: error: out of disk", 1))
    with pytest.raises(CommandFailed, match="out of disk"):
        restore_backup(make_pair(t1, t2), ID, "cms_new", confirm=lambda q: True)
    ddl = [(c.input or b"").split(b" ")[0] for c in t1.calls if b"DATABASE" in (c.input or b"")]
    assert ddl == [b"CREATE", b"DROP"]
    assert b"result=failed" in (t1.calls[-1].input or b"")


def test_list_shows_unreadable_manifests_and_unreachable_nodes() -> None:
    from hapair.workflows.backup import list_all

    t1, t2 = transports()
    t1.on(["test", "-d", BASE], Reply(raises=Refused("node1: unreachable")))
    t2.on(["find", BASE, "-mindepth", "1", "-maxdepth", "1", "-type", "d", "-printf", "%f\\n"],
          stdout=f"{ID}\n20250302T000000Z-logical\nlost+found\n20250303T000000Z-physical.partial\n")
    t2.files[f"{FINAL}/manifest.json"] = _stored(json.dumps(MANIFEST).encode())
    t2.files[f"{BASE}/20250302T000000Z-logical/manifest.json"] = _stored(b"{not json")
    entries, warnings = list_all(make_pair(t1, t2), lambda _l: None)
    assert warnings == ["node1: backups not listed: node1: unreachable"]
    assert [(e.id, e.complete, e.manifest is not None, bool(e.problem)) for e in entries] == [
        ("20250303T000000Z-physical", False, False, False),
        ("20250302T000000Z-logical", True, False, True),
        (ID, True, True, False),
    ]
