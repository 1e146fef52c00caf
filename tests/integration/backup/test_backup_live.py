"""The backup verbs against a real primary + standby: take, verify, corrupt, restore, refuse."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from backup_live_helpers import EXPECTED_COUNTS, Live, make_factory, run_cli

pytestmark = pytest.mark.integration


def _backup(live: Live, dirs: dict[str, str], capsys: pytest.CaptureFixture[str], *extra: str,
            **factory: object) -> tuple[int, dict]:
    obj = {"backup_pair": make_factory(live, dirs, **factory)}  # type: ignore[arg-type]
    rc = run_cli(["backup", "-i", str(live.inventory), "-o", "json", *extra], obj)
    out = capsys.readouterr().out
    return rc, json.loads(out)


def _cli(live: Live, dirs: dict[str, str], capsys: pytest.CaptureFixture[str], args: list[str],
         **factory: object) -> tuple[int, dict]:
    obj = {"backup_pair": make_factory(live, dirs, **factory)}  # type: ignore[arg-type]
    rc = run_cli([*args, "-i", str(live.inventory), "-o", "json"], obj)
    return rc, json.loads(capsys.readouterr().out)


def _manifest(path: str) -> dict:
    return json.loads((Path(path) / "manifest.json").read_text())


def test_logical_backup_from_the_standby_verify_and_restore(
    live: Live, dirs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    live.caught_up()
    rc, doc = _backup(live, dirs, capsys)
    assert rc == 0, doc
    assert doc["node"] == "node2"
    assert doc["source"]["role"] == "standby"
    assert doc["source"]["reason"].startswith("node2 is a healthy standby (streaming, lag ")
    m = _manifest(doc["path"])
    assert m["source"]["role"] == "standby"  # pg_is_in_recovery() inside the dump's snapshot
    assert {f"{t['schema']}.{t['table']}": t["rows"] for t in m["tables"]} == EXPECTED_COUNTS
    assert m["database"] == {"name": "cms", "owner": "cms", "encoding": "UTF8",
                             "collate": "C", "ctype": "C"}
    assert m["postgres"]["server_version_num"] // 10000 == 15
    assert [f["name"] for f in m["files"]] == ["cms.dump", "globals.sql"]
    # Files private to postgres, directory 0700, no leftovers of the run.
    base = Path(dirs["node2"])
    assert stat.S_IMODE(base.stat().st_mode) == 0o700 and base.owner() == "postgres"
    bdir = Path(doc["path"])
    assert sorted(p.name for p in bdir.iterdir()) == ["cms.dump", "globals.sql", "manifest.json"]
    for p in bdir.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert "PASSWORD" not in (bdir / "globals.sql").read_text().upper().replace(
        "NOPASSWORD", "")  # roles without their password hashes
    assert not (Path(dirs["node1"])).exists()  # nothing written on the primary

    rc, ver = _cli(live, dirs, capsys, ["backup", "verify", doc["id"]])
    assert rc == 0, ver
    assert ver["verification"]["result"] == "passed"
    assert ver["verification"]["restored_on"] == "node1"  # across nodes: the dump is on node2
    assert ver["verification"]["tables_compared"] == len(EXPECTED_COUNTS)
    assert _manifest(doc["path"])["verification"]["result"] == "passed"
    assert live.primary.sql("SELECT count(*) FROM pg_database WHERE datname LIKE "
                            "'hapair_verify_%'") == "0"  # scratch dropped
    assert not list(Path(dirs["node2"]).glob(".pgpass-*"))  # the passfile is gone

    rc, res = _cli(live, dirs, capsys, ["restore", doc["id"], "--into", "cms_restored", "-y"])
    assert rc == 0, res
    assert res["node"] == "node1" and res["database"] == "cms_restored" and res["ok"]
    assert live.primary.sql("SELECT count(*) FROM articles", database="cms_restored") == "500"
    assert live.primary.sql("SELECT pg_get_userbyid(datdba) FROM pg_database "
                            "WHERE datname = 'cms_restored'") == "cms"
    assert any("ALTER DATABASE cms RENAME TO" in s for s in res["next_steps"])

    # Never over an existing database, and never the live one.
    before = live.primary.sql("SELECT count(*) FROM articles", database="cms")
    rc, again = _cli(live, dirs, capsys, ["restore", doc["id"], "--into", "cms_restored", "-y"])
    assert rc == 3 and "already exists" in again["error"]
    rc, onto_live = _cli(live, dirs, capsys, ["restore", doc["id"], "--into", "cms", "-y"])
    assert rc == 3 and "live database" in onto_live["error"]
    assert live.primary.sql("SELECT count(*) FROM articles", database="cms") == before
    live.primary.sql("DROP DATABASE cms_restored")


def test_corrupt_dump_fails_verification(
    live: Live, dirs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    rc, doc = _backup(live, dirs, capsys, "--from", "primary")
    assert rc == 0 and doc["node"] == "node1", doc
    dump = Path(doc["path"]) / "cms.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    rc, ver = _cli(live, dirs, capsys, ["backup", "verify", doc["id"]])
    assert rc == 4
    assert ver["verification"]["result"] == "failed"
    assert "cms.dump: sha256" in ver["verification"]["problems"][0]
    assert _manifest(doc["path"])["verification"]["result"] == "failed"


def test_row_count_mismatch_fails_verification(
    live: Live, dirs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The restore + count is a real check, not only the checksum: a manifest that claims a
    different count (the dump itself intact) fails."""
    rc, doc = _backup(live, dirs, capsys, "--from", "primary")
    assert rc == 0, doc
    path = Path(doc["path"]) / "manifest.json"
    m = json.loads(path.read_text())
    for t in m["tables"]:
        if t["table"] == "articles":
            t["rows"] = 501
    path.write_text(json.dumps(m))
    rc, ver = _cli(live, dirs, capsys, ["backup", "verify", "latest"])
    assert rc == 4
    assert ver["verification"]["problems"] == [
        "public.articles: 501 rows in the backup, 500 after restore"
    ]
    assert live.primary.sql("SELECT count(*) FROM pg_database WHERE datname LIKE "
                            "'hapair_verify_%'") == "0"


def test_truncated_dump_with_matching_checksum_fails_restore(
    live: Live, dirs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A dump that is broken but whose checksum was recorded as such: pg_restore catches it."""
    rc, doc = _backup(live, dirs, capsys, "--from", "primary")
    assert rc == 0, doc
    bdir = Path(doc["path"])
    dump = bdir / "cms.dump"
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size * 2 // 3])
    import hashlib

    m = json.loads((bdir / "manifest.json").read_text())
    for f in m["files"]:
        if f["name"] == "cms.dump":
            f["sha256"] = hashlib.sha256(dump.read_bytes()).hexdigest()
            f["bytes"] = dump.stat().st_size
    (bdir / "manifest.json").write_text(json.dumps(m))
    rc, ver = _cli(live, dirs, capsys, ["backup", "verify", doc["id"]])
    assert rc == 4, ver
    assert ver["verification"]["problems"][0].startswith(("pg_restore", "pg_restore -l"))
    assert live.primary.sql("SELECT count(*) FROM pg_database WHERE datname LIKE "
                            "'hapair_verify_%'") == "0"


def test_single_server_backs_up_the_primary_and_says_why(
    live: Live, dirs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    rc, doc = _backup(live, dirs, capsys, node2="down")
    assert rc == 0, doc
    assert doc["node"] == "node1"
    assert doc["source"]["reason"].startswith("no healthy standby (node2 is down (PostgreSQL "
                                              "not answering")
    assert doc["source"]["facts_from"].startswith("SQL on each node")
    rc, refused = _backup(live, dirs, capsys, "--from", "standby", node2="down")
    assert rc == 3 and "no healthy standby" in refused["error"]


def test_failing_pg_dump_is_a_failed_run_without_leftovers(
    live: Live, dirs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # A database that does not exist: psql (and pg_dump) cannot connect.
    rc, doc = _backup(live, dirs, capsys, "--from", "primary", database="nope")
    assert rc == 1 and doc["ok"] is False
    assert 'database "nope" does not exist' in doc["error"]
    assert list(Path(dirs["node1"]).iterdir()) == []  # the partial directory is gone

    # pg_dump itself failing after psql exported the snapshot (a broken pg_dump binary).
    bin_dir = Path(dirs["node1"]).parent.parent / "bin"  # postgres must reach it
    bin_dir.mkdir(parents=True)
    for tool in os.listdir("/usr/lib/postgresql/15/bin"):
        (bin_dir / tool).symlink_to(f"/usr/lib/postgresql/15/bin/{tool}")
    (bin_dir / "pg_dump").unlink()
    (bin_dir / "pg_dump").write_text("#!/bin/sh\necho 'pg_dump: error: disk on fire' >&2\nexit 1\n")
    (bin_dir / "pg_dump").chmod(0o755)
    rc, doc = _backup(live, dirs, capsys, "--from", "primary", bin_dir=bin_dir)
    assert rc == 1 and doc["ok"] is False
    assert "disk on fire" in doc["error"]
    assert list(Path(dirs["node1"]).iterdir()) == []


def test_patroni_cluster_view_decides_the_source(
    live: Live, dirs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """GET /cluster (a stand-in Patroni REST API on 127.0.0.1:18710) says node2 is stopped."""
    import http.server
    import threading

    body = json.dumps({"scope": "cms", "members": [
        {"name": "node1", "role": "leader", "state": "running", "timeline": 1},
        {"name": "node2", "role": "replica", "state": "stopped", "timeline": 1},
    ]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            code = 200 if self.path == "/cluster" else 404
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body if code == 200 else b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 18710), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        rc, doc = _backup(live, dirs, capsys, "--dry-run",
                          patroni_url="http://127.0.0.1:18710")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert rc == 0, doc
    assert doc["dry_run"] is True and doc["node"] == "node1"
    assert doc["source"]["facts_from"] == "Patroni /cluster (asked on node1)"
    assert doc["source"]["reason"] == (
        "no healthy standby (node2 is stopped, not streaming): backing up from the primary node1"
    )
    assert not Path(dirs["node1"]).exists()  # a dry run writes nothing
