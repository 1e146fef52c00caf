"""The observation probes' parsers against outputs recorded from PostgreSQL 15, etcd 3.4 and
df; argv builders against exact lists."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hapair.errors import StepFailed
from hapair.observe import probes
from hapair.workflows.backup.model import Manifest

DATA = Path(__file__).parent / "data"


def data(name: str) -> str:
    return (DATA / name).read_text()


def test_pg_status_primary() -> None:
    s = probes.parse_pg_status(data("pg_status_primary.txt"))
    assert s.role == "primary" and s.timeline == 1 and s.current_lsn == 0x3644BF8
    assert s.replay_lsn is None and s.replay_delay_s is None
    (row,) = s.replication
    assert (row.application_name, row.client_addr, row.state, row.sync_state) == (
        "node2", "", "streaming", "sync")
    assert row.lag_bytes == 5380544 and row.replay_lag_s == pytest.approx(0.011277)
    assert [(x.name, x.active, x.wal_status, x.retained_bytes) for x in s.slots] == [
        ("node2", True, "reserved", 0), ("old_standby", False, "reserved", 23350224)]
    assert s.sync_standby_names == "node2" and s.server_version_num == 150018


def test_pg_status_standby() -> None:
    s = probes.parse_pg_status(data("pg_status_standby.txt"))
    assert s.role == "replica" and s.receiver == "streaming"
    assert s.receive_lsn == s.replay_lsn == 0x3644BF8 and s.replay_delay_s == 0.0
    assert s.replication == () and s.slots == ()


@pytest.mark.parametrize("text", ["", "psql: error\n", '{"server_version_num": 1}', "[1]"])
def test_pg_status_refuses_junk(text: str) -> None:
    with pytest.raises(StepFailed, match="PostgreSQL status"):
        probes.parse_pg_status(text)


def test_pg_status_sql_never_measures_delay_as_now_minus_replay_alone() -> None:
    """#15: the standby's estimate is 0 when all it received is replayed."""
    sql = probes.PG_STATUS_SQL
    assert "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0" in sql
    assert "extract(epoch FROM replay_lag)" in sql  # the primary's own measurement


def test_df() -> None:
    d = probes.parse_df(data("df_tmp.txt"), "/tmp")
    assert (d.total_bytes, d.free_bytes) == (270553174016, 83784298496)
    assert d.free_ratio == pytest.approx(83784298496 / 270553174016)
    with pytest.raises(StepFailed, match="df: unexpected output"):
        probes.parse_df("df: /nope: No such file or directory\n", "/nope")


def test_df_argv_passes_the_path_as_an_argument() -> None:
    argv = probes.df_argv("/var/lib/x; rm -rf /")
    assert argv[:2] == ["sh", "-c"] and argv[-1] == "/var/lib/x; rm -rf /"
    assert "rm -rf" not in argv[2]


def test_etcd_leader_key_and_lease() -> None:
    holder, lease = probes.parse_etcd_get(data("etcd_get_leader.json"))
    assert holder == "node1" and lease == 1036006128052092933  # exact: no float round trip
    assert probes.parse_etcd_get(data("etcd_get_none.json")) == (None, None)
    assert probes.parse_etcd_lease(data("etcd_lease.json")) == (29, 30)
    assert probes.parse_etcd_lease(data("etcd_lease_expired.json")) == (-1, 0)
    key = probes.leader_key(holder, lease, (29, 30), "node2")
    assert (key.holder, key.ttl_s, key.granted_ttl_s, key.seen_from) == ("node1", 29, 30, "node2")


def test_etcd_argv() -> None:
    url = "http://10.99.0.11:2379"
    assert probes.etcd_get_argv(url, "/service/cms/leader") == [
        "etcdctl", f"--endpoints={url}", "--dial-timeout=2s", "--command-timeout=3s", "get",
        "/service/cms/leader", "-w", "json"]
    assert probes.etcd_lease_argv(url, 1036006128052092933)[-4:] == [
        "timetolive", "e60a2159fac4005", "-w", "json"]


def test_newest_complete_backup_per_kind() -> None:
    names = ["20250301T021500Z-logical", "20250302T021500Z-logical",
             "20250303T021500Z-logical.partial", "20250228T010000Z-physical", "lost+found"]
    found = probes.newest_complete("node2", "/b", names)
    assert [(e.id, e.kind, e.path) for e in found] == [
        ("20250302T021500Z-logical", "logical", "/b/20250302T021500Z-logical"),
        ("20250228T010000Z-physical", "physical", "/b/20250228T010000Z-physical")]


def _manifest(finished: str, verification: dict[str, str] | None) -> dict[str, object]:
    return Manifest(id="20250302T021500Z-logical", kind="logical", cluster="cms",
                    source={"node": "node2"}, postgres={}, files=(), started_at=finished,
                    finished_at=finished, tools={}, verification=verification).to_dict()


def test_backup_seen_from_manifest() -> None:
    (entry,) = probes.newest_complete("node2", "/b", ["20250302T021500Z-logical"])
    seen = probes.backup_seen(entry, _manifest("2025-03-02T02:20:00Z", {"result": "passed"}))
    assert seen.finished_at == datetime(2025, 3, 2, 2, 20, tzinfo=UTC).timestamp()
    assert seen.taken_at == datetime(2025, 3, 2, 2, 15, tzinfo=UTC).timestamp()
    assert seen.verified is True and seen.problem == ""
    failed = probes.backup_seen(entry, _manifest("2025-03-02T02:20:00Z", {"result": "failed"}))
    assert failed.verified is False
    assert probes.backup_seen(entry, _manifest("2025-03-02T02:20:00Z", None)).verified is None
    broken = probes.backup_seen(entry, {"format": "other"})
    assert broken.finished_at is None and broken.problem.startswith("manifest.json unreadable")
    assert probes.backup_seen(entry, None, "no manifest.json").problem == "no manifest.json"


def test_list_backups_argv_is_quiet_without_a_directory() -> None:
    argv = probes.list_backups_argv("/var/lib/hapair/backups")
    assert argv[-1] == "/var/lib/hapair/backups" and '[ -d "$1" ] || exit 0' in argv[2]
