"""Physical backups checked by pg_verifybackup, and retention on real backup directories."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from backup_live_helpers import Live, make_factory, run_cli

from hapair.inventory import load_inventory
from hapair.workflows.backup import BackupRequest, Settings, take_backup, verify_backup

pytestmark = pytest.mark.integration


def _json_cli(live: Live, dirs: dict[str, str], capsys: pytest.CaptureFixture[str],
              args: list[str]) -> tuple[int, dict]:
    rc = run_cli([*args, "-i", str(live.inventory), "-o", "json"],
                 {"backup_pair": make_factory(live, dirs)})
    return rc, json.loads(capsys.readouterr().out)


def test_physical_backup_from_the_standby_passes_pg_verifybackup(
    live: Live, dirs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    live.caught_up()
    rc, doc = _json_cli(live, dirs, capsys, ["backup", "--kind", "physical"])
    assert rc == 0, doc
    assert doc["node"] == "node2" and doc["manifest"]["source"]["role"] == "standby"
    names = [f["name"] for f in doc["manifest"]["files"]]
    assert names == ["pgdata/backup_manifest", "pgdata/base.tar.gz", "pgdata/pg_wal.tar.gz"]
    wal = doc["manifest"]["wal"][0]
    assert wal["timeline"] == 1 and wal["start_lsn"] and wal["end_lsn"]

    rc, ver = _json_cli(live, dirs, capsys, ["backup", "verify", doc["id"]])
    assert rc == 0, ver
    assert ver["verification"]["method"] == "sha256 + extract + pg_verifybackup"
    assert not list(Path(dirs["node2"]).glob(".verify-*"))  # the extraction is removed

    # WAL missing from the backup (checksums recorded for the damaged file): pg_verifybackup
    # must say so, not only the checksum comparison.
    bdir = Path(doc["path"])
    empty = bdir.parent / "empty"
    empty.mkdir()
    wal_tar = bdir / "pgdata" / "pg_wal.tar.gz"
    subprocess.run(["tar", "-czf", str(wal_tar), "-C", str(empty), "."], check=True)
    empty.rmdir()
    m = json.loads((bdir / "manifest.json").read_text())
    for f in m["files"]:
        if f["name"] == "pgdata/pg_wal.tar.gz":
            f["sha256"] = hashlib.sha256(wal_tar.read_bytes()).hexdigest()
            f["bytes"] = wal_tar.stat().st_size
    (bdir / "manifest.json").write_text(json.dumps(m))
    rc, ver = _json_cli(live, dirs, capsys, ["backup", "verify", doc["id"]])
    assert rc == 4, ver
    assert ver["verification"]["problems"][0].startswith("pg_verifybackup: ")
    assert json.loads((bdir / "manifest.json").read_text())["verification"]["result"] == "failed"
    assert not list(Path(dirs["node2"]).glob(".verify-*"))


def test_retention_keeps_n_and_the_newest_verified(live: Live, dirs: dict[str, str]) -> None:
    inv = load_inventory(live.inventory)
    pair = make_factory(live, dirs, node2="down")(inv, Settings())
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    ids = []
    for i in range(4):
        doc = take_backup(pair, BackupRequest(want="primary"), now=lambda i=i: t0 + timedelta(
            seconds=i))
        ids.append(doc["id"])
    physical = take_backup(pair, BackupRequest(kind="physical", want="primary"),
                           now=lambda: t0 + timedelta(seconds=1))["id"]
    assert verify_backup(pair, ids[1])["ok"]
    base = Path(dirs["node1"])
    stale = base / "20241230T000000Z-logical.partial"
    fresh = base / "20241231T230000Z-logical.partial"
    foreign = base / "keep-me"
    for d in (stale, fresh, foreign):
        d.mkdir()

    later = t0 + timedelta(seconds=10)
    dry = take_backup(pair, BackupRequest(want="primary", keep=2, dry_run=True),
                      now=lambda: later)
    node1_plan = next(p for p in dry["retention"] if p["node"] == "node1")
    assert sorted(d["id"] for d in node1_plan["delete"]) == sorted(
        [ids[0], ids[2], "20241230T000000Z-logical"]
    )
    assert {"node": "node2", "skipped": "node2: unreachable"} in dry["retention"]
    assert len([p for p in base.iterdir() if p.name.endswith("-logical")]) == 4  # untouched

    doc = take_backup(pair, BackupRequest(want="primary", keep=2), now=lambda: later)
    left = sorted(p.name for p in base.iterdir())
    assert left == sorted([
        ids[1],  # the newest verified
        ids[3], doc["id"],  # the newest two
        physical,  # another kind
        fresh.name, foreign.name,  # maybe in progress; not ours
    ])
    deleted = next(p for p in doc["retention"] if p["node"] == "node1")["delete"]
    assert {d["id"]: d["reason"] for d in deleted}[ids[0]] == (
        "older than the newest 2 logical backups"
    )
