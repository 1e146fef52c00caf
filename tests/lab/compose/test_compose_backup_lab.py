"""Opt-in (HAPAIR_DOCKER_E2E=1, root): `hapair backup` on the compose pair that
`hapair upgrade --experimental-compose` built (conftest.py's `upgraded`).

The tools run in each node's hapair-patroni container; the files land in the host's
/var/lib/hapair/backups, bind-mounted there. Checked on real engines: a logical and a physical
backup from the streaming standby, their files on the host (0600 in 0700 directories, owned by
the container's postgres, the manifest's checksums), `backup list -o json`, `backup verify` of
both kinds (the dump restored across nodes into a scratch database on the primary), `restore`
into a new database with the row count and sum of the source table, the live database refused,
and retention on both nodes leaving the upgrade's own dump alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import compose_pair as cp
import pytest
from lab_helpers import Lab, hapair

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.environ.get("HAPAIR_DOCKER_E2E") != "1",
                       reason="opt-in: HAPAIR_DOCKER_E2E=1 (Docker engines in the lab hosts)"),
    pytest.mark.timeout(3600),  # images loaded into three engines, the upgrade, then backups
]

BASE = "/var/lib/hapair/backups"
POSTGRES_UID = 999  # postgres in the Debian images (and the kit's)
BEFORE_UPGRADE = f"{BASE}/cms-before-upgrade.dump"
SOURCE_SQL = "SELECT count(*), sum(id) FROM before_upgrade"


def run_json(*args: str, expect: int = 0) -> dict[str, Any]:
    res = hapair(*args, "-o", "json")
    assert res.returncode == expect, res.stderr[-4000:]
    return json.loads(res.stdout)


def on_host(lab: Lab, host: str, path: str) -> Path:
    return lab.cfg.host_root(host) / path.lstrip("/")


def psql_db(engines: dict[str, str], host: str, database: str, sql: str) -> list[list[str]]:
    """cp.psql, in another database than the app's."""
    uri = engines[host]
    found = subprocess.run(["docker", "-H", uri, "ps", "-q", "--filter",
                            "label=com.docker.compose.service=hapair-patroni"],
                           capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert len(found) == 1, f"{host}: hapair-patroni containers {found}"
    res = subprocess.run(["docker", "-H", uri, "exec", "-i", "-u", "postgres", found[0], "psql",
                          "-X", "-At", "-F", "|", "-v", "ON_ERROR_STOP=1", "-U", "cms", "-d",
                          database], input=sql, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return [line.split("|") for line in res.stdout.splitlines()]


# Named apart from their functions: a test that forgets to ask for one fails lint (F821).
@pytest.fixture(scope="module", name="logical")
def logical_backup(upgraded: dict, inventory: Path) -> dict[str, Any]:
    return run_json("backup", "-i", str(inventory))


@pytest.fixture(scope="module", name="physical")
def physical_backup(upgraded: dict, inventory: Path) -> dict[str, Any]:
    return run_json("backup", "-i", str(inventory), "--kind", "physical")


def test_logical_backup_runs_in_the_standby_s_container(lab: Lab, logical: dict) -> None:
    assert (logical["ok"], logical["node"], logical["runs_in"]) == (True, "node2",
                                                                    "hapair-patroni")
    m = logical["manifest"]
    assert m["source"]["role"] == "standby"
    assert {"schema": "public", "table": "before_upgrade", "rows": cp.ROWS} in m["tables"]
    assert m["postgres"]["server_version"].startswith("17")
    for f in m["files"]:  # the manifest's paths name the host's files
        data = on_host(lab, "node2", f"{logical['path']}/{f['name']}").read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (f["bytes"], f["sha256"])
    assert on_host(lab, "node2", f"{logical['path']}/cms.dump").read_bytes()[:5] == b"PGDMP"


def test_physical_backup_runs_in_the_standby_s_container(lab: Lab, physical: dict) -> None:
    assert (physical["ok"], physical["node"]) == (True, "node2")
    m = physical["manifest"]
    assert m["wal"] and m["source"]["role"] == "standby"
    names = {f["name"] for f in m["files"]}
    assert {"pgdata/base.tar.gz", "pgdata/backup_manifest"} <= names
    for f in m["files"]:
        assert on_host(lab, "node2", f"{physical['path']}/{f['name']}").stat().st_size == f["bytes"]


def test_backup_files_are_0600_in_0700_directories_owned_by_postgres(
        lab: Lab, logical: dict, physical: dict) -> None:
    base = on_host(lab, "node2", BASE)
    st = base.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o700, POSTGRES_UID)
    for backup in (logical, physical):
        root = on_host(lab, "node2", backup["path"])
        for path in [root, *root.rglob("*")]:
            st = path.lstat()
            want = 0o700 if path.is_dir() else 0o600
            assert (stat.S_IMODE(st.st_mode), st.st_uid) == (want, POSTGRES_UID), path


def test_list_shows_both_backups_and_not_the_upgrade_dump(
        inventory: Path, logical: dict, physical: dict) -> None:
    doc = run_json("backup", "list", "-i", str(inventory))
    assert doc["warnings"] == []
    seen = {(b["id"], b["kind"], b["node"], b["complete"]) for b in doc["backups"]}
    assert seen == {(logical["id"], "logical", "node2", True),
                    (physical["id"], "physical", "node2", True)}


def test_verify_restores_the_dump_on_the_primary_and_drops_the_scratch_database(
        engines: dict[str, str], inventory: Path, logical: dict) -> None:
    doc = run_json("backup", "verify", "-i", str(inventory), logical["id"])
    v = doc["verification"]
    assert (doc["ok"], v["result"], v["restored_on"]) == (True, "passed", "node1"), v
    assert v["tables_compared"] >= 1
    assert cp.psql(engines, "node1", "SELECT count(*) FROM pg_database WHERE datname LIKE "
                   "'hapair_verify_%'") == [["0"]]


def test_verify_physical_checks_it_with_pg_verifybackup(lab: Lab, inventory: Path,
                                                        logical: dict, physical: dict) -> None:
    doc = run_json("backup", "verify", "-i", str(inventory), physical["id"])
    assert (doc["ok"], doc["verification"]["result"]) == (True, "passed"), doc
    assert not on_host(lab, "node2", f"{BASE}/.verify-{physical['id']}").exists()
    listed = run_json("backup", "list", "-i", str(inventory))["backups"]
    assert {b["id"]: b["verification"] for b in listed} == {
        physical["id"]: "passed", logical["id"]: "passed"}


def test_restore_into_a_new_database_has_every_row(engines: dict[str, str], inventory: Path,
                                                   logical: dict) -> None:
    doc = run_json("restore", "-i", str(inventory), logical["id"], "--into", "cms_restored",
                   "-y")
    assert (doc["ok"], doc["node"], doc["from_node"]) == (True, "node1", "node2"), doc
    source = cp.psql(engines, "node1", SOURCE_SQL)
    assert source == [[str(cp.ROWS), str(cp.ROWS * (cp.ROWS + 1) // 2)]]
    assert psql_db(engines, "node1", "cms_restored", SOURCE_SQL) == source


def test_restore_never_writes_over_a_database(inventory: Path, logical: dict) -> None:
    live = run_json("restore", "-i", str(inventory), logical["id"], "--into", "cms", "-y",
                    expect=3)
    assert "live database" in live["error"]
    again = run_json("restore", "-i", str(inventory), logical["id"], "--into", "cms_restored",
                     "-y", expect=3)
    assert "already exists on node1" in again["error"]


def test_retention_on_both_nodes_leaves_the_upgrade_dump(
        lab: Lab, inventory: Path, logical: dict, physical: dict) -> None:
    """node1's directory was made by the upgrade (root, with its dump in it): a backup there
    takes it over for the container's postgres; `--keep 1` then prunes each node's logical
    backups and never touches the dump, the physical backup or the verified one."""
    dump = on_host(lab, "node1", BEFORE_UPGRADE)
    dump_bytes = dump.read_bytes()
    on_node1 = run_json("backup", "-i", str(inventory), "--from", "primary")
    assert on_node1["node"] == "node1"
    base1 = on_host(lab, "node1", BASE).stat()
    assert (stat.S_IMODE(base1.st_mode), base1.st_uid) == (0o700, POSTGRES_UID)
    middle = run_json("backup", "-i", str(inventory))
    newest = run_json("backup", "-i", str(inventory), "--keep", "1")
    plans = {p["node"]: p for p in newest["retention"]}
    assert [d["id"] for d in plans["node2"]["delete"]] == [middle["id"]]
    assert plans["node1"]["delete"] == []
    kept = {b["id"] for b in run_json("backup", "list", "-i", str(inventory))["backups"]}
    assert kept == {logical["id"], physical["id"], on_node1["id"], newest["id"]}
    assert not on_host(lab, "node2", middle["path"]).exists()
    assert dump.read_bytes() == dump_bytes and dump_bytes[:5] == b"PGDMP"
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600


def test_each_step_left_an_audit_line_on_its_host(lab: Lab, logical: dict) -> None:
    node2 = on_host(lab, "node2", "/var/log/hapair/audit.log").read_text()
    node1 = on_host(lab, "node1", "/var/log/hapair/audit.log").read_text()
    assert f"run={logical['id']}\tstep=backup/node2/logical\tresult=ok" in node2
    assert f"run={logical['id']}\tstep=verify/node2/logical\tresult=passed" in node2
    assert f"run={logical['id']}\tstep=restore/node1/cms_restored\tresult=ok" in node1
