"""gather() over RecordingTransports and a fake controller I/O: the probes' exact commands,
how answers become facts, and an unreachable host as a fact (asked once, not per probe)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from hapair.components.common import Endpoint
from hapair.errors import Refused
from hapair.exec.recording import RecordingTransport, Reply
from hapair.inventory import load_inventory
from hapair.observe import Io, ReadOnlySecrets, gather, run_checks, targets_from_params
from hapair.observe.probes import PG_STATUS_SQL, df_argv, list_backups_argv
from hapair.observe.targets import Targets
from hapair.workflows.upgrade.params import UpgradeParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backup"))
from backup_fakes import write_inventory  # noqa: E402

DATA = Path(__file__).parent / "data"
COMPONENTS = Path(__file__).resolve().parents[1] / "components" / "data"
GENERATED = ("replication_password", "sentinel_password", "vrrp_secret",
             "pgbouncer_admin_password")


@pytest.fixture
def targets(tmp_path: Path) -> Targets:
    inv = load_inventory(write_inventory(tmp_path))
    gen = tmp_path / "secrets" / "generated"
    gen.mkdir(mode=0o700)
    for name in GENERATED:
        (gen / name).write_text(f"generated-{name}\n")
    return targets_from_params(UpgradeParams(inv, ReadOnlySecrets(gen)))


def psql(port: int = 5432) -> list[str]:
    return ["/usr/lib/postgresql/15/bin/psql", "-h", "/var/run/postgresql", "-p", str(port),
            "-U", "postgres", "-w", "-d", "postgres", "-X", "-q", "-A", "-t", "-v",
            "ON_ERROR_STOP=1", "-f", "-"]


def etcd_health(ip: str) -> list[str]:
    return ["etcdctl", f"--endpoints=http://{ip}:2379", "--dial-timeout=2s",
            "--command-timeout=3s", "endpoint", "health", "-w", "json"]


def node_transport(name: str, ip: str, primary: bool) -> RecordingTransport:
    t = RecordingTransport(name)
    url = f"http://{ip}:2379"
    t.on(["true"])
    t.on(etcd_health(ip), stdout=json.dumps([{"endpoint": url, "health": True}]))
    t.on_prefix(["etcdctl", f"--endpoints={url}", "--dial-timeout=2s", "--command-timeout=3s",
                 "endpoint", "status"],
                stdout=json.dumps([{"Endpoint": url, "Status": {
                    "header": {"member_id": 11 if primary else 12}, "leader": 11,
                    "raftTerm": 3, "version": "3.4.23"}}]))
    t.on_prefix(["etcdctl", f"--endpoints={url}", "--dial-timeout=2s", "--command-timeout=3s",
                 "get"], stdout=(DATA / "etcd_get_leader.json").read_text())
    t.on_prefix(["etcdctl", f"--endpoints={url}", "--dial-timeout=2s", "--command-timeout=3s",
                 "lease"], stdout=(DATA / "etcd_lease.json").read_text())
    if name == "witness":
        return t
    t.on(psql(), stdout=(DATA / ("pg_status_primary.txt" if primary else
                                 "pg_status_standby.txt")).read_text())
    t.on(df_argv("/var/lib/postgresql/15/main"), stdout=(DATA / "df_tmp.txt").read_text())
    t.on_prefix(["python3", "-c"], stdout=(COMPONENTS / "haproxy" /
                                           "router_two_redis_masters.csv").read_text())
    t.on_prefix(["psql", "-X", "-q", "--csv"], stdout=(
        COMPONENTS / "pgbouncer" / "show_databases_running.csv").read_text())
    t.on(["ip", "-o", "addr", "show", "dev", "eth0"], stdout=(
        COMPONENTS / "keepalived" / ("ip_addr_with_vip.txt" if primary else
                                     "ip_addr_without_vip.txt")).read_text())
    t.on(list_backups_argv("/var/lib/hapair/backups"), stdout="")
    return t


class FakeRedis:
    def __init__(self, replies: dict[tuple[str, ...], Any]) -> None:
        self.replies = replies

    def __enter__(self) -> FakeRedis:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute_command(self, *words: str) -> Any:
        reply = self.replies[tuple(w.upper() for w in words)]
        if isinstance(reply, Exception):
            raise reply
        return reply


def fake_io(http: dict[str, tuple[int, str]], down: set[str] = frozenset()) -> Io:
    info = {"10.99.0.11": (DATA.parent.parent / "components" / "data" / "redis" /
                           "info_master.txt").read_text(),
            "10.99.0.12": (COMPONENTS / "redis" / "info_replica.txt").read_text()}

    def get(url: str, _timeout: float) -> tuple[int, str]:
        if url not in http:
            raise OSError(f"connection refused: {url}")
        return http[url]

    def client(ep: Endpoint, _password: object) -> FakeRedis:
        if ep.host in down:
            raise redis.ConnectionError(f"Error 111 connecting to {ep}")
        if ep.port == 26379:
            return FakeRedis({
                ("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "CMS-CACHE"): ["10.99.0.11", "6379"],
                ("SENTINEL", "CKQUORUM", "CMS-CACHE"):
                    "OK 3 usable Sentinels. Quorum and failover authorization can be reached",
                ("SENTINEL", "SENTINELS", "CMS-CACHE"): [["name", "a"], ["name", "b"]]})
        return FakeRedis({("INFO", "REPLICATION"): info[ep.host]})

    return Io(http=get, redis=client, clock=lambda: 1_750_000_000.0)


def http_ok() -> dict[str, tuple[int, str]]:
    out = {}
    for ip in ("10.99.0.11", "10.99.0.12"):
        for path in (":8000/health/", ":3000/api/health", ":80/health/"):
            out[f"http://{ip}{path}"] = (200, "ok")
        out[f"http://{ip}:8008/cluster"] = (200, (COMPONENTS / "patroni" /
                                                  "cluster_sync.json").read_text())
    out["http://10.99.0.11:8008/patroni"] = (200, (COMPONENTS / "patroni" /
                                                   "patroni_primary.json").read_text())
    out["http://10.99.0.12:8008/patroni"] = (200, (COMPONENTS / "patroni" /
                                                   "patroni_replica.json").read_text())
    out["http://10.99.0.10:80/health/"] = (200, "ok")
    return out


@pytest.fixture
def transports() -> Iterator[dict[str, RecordingTransport]]:
    yield {"node1": node_transport("node1", "10.99.0.11", True),
           "node2": node_transport("node2", "10.99.0.12", False),
           "witness": node_transport("witness", "10.99.0.13", False)}


def test_gather_builds_the_snapshot(targets: Targets,
                                    transports: dict[str, RecordingTransport]) -> None:
    s = gather(targets, transports, fake_io(http_ok()))
    assert s.taken_at == 1_750_000_000.0 and s.primary == "node1"
    n1, n2 = s.nodes
    assert n1.postgres.value is not None and n1.postgres.value.current_lsn == 0x3644BF8
    assert n1.disk.value is not None and n1.disk.value.free_bytes == 83784298496
    assert n1.vip.value is True and n2.vip.value is False
    assert n1.pgbouncer.value is not None and not n1.pgbouncer.value.paused
    assert n1.backups.value == ()
    assert n2.redis.value is not None and n2.redis.value.role == "slave"
    assert s.leader_key.value is not None and s.leader_key.value.ttl_s == 29
    assert s.leader_key.value.seen_from == "node1"
    assert all(h.etcd.value is not None and h.etcd.value.healthy for h in s.hosts)
    assert s.host("witness").sentinel.value is not None
    assert s.host("witness").sentinel.value.master_node == "node1"
    assert s.patroni.value is not None and s.patroni.value.leader().name == "node1"
    # the SQL probe: as postgres over the socket, the query on stdin, a bounded connect
    (call,) = [c for c in transports["node1"].calls if c.argv == tuple(psql())]
    assert call.user == "postgres" and call.input == PG_STATUS_SQL.encode()
    assert call.env == {"PGCONNECT_TIMEOUT": "5"}
    (pgb,) = [c for c in transports["node1"].calls if c.argv[:1] == ("psql",)]
    assert pgb.user == "postgres" and pgb.env is not None
    assert pgb.env["PGPASSFILE"] == "/var/lib/postgresql/.pgpass_hapair"
    assert pgb.argv[-1] == "SHOW DATABASES" and "generated" not in " ".join(pgb.argv)
    assert transports["witness"].commands[0] == ("true",)
    assert not any(c[0] == "psql" or "psql" in c[0] for c in transports["witness"].commands)


def test_unreachable_host_is_a_fact_and_asked_once(targets: Targets,
                                                   transports: dict[str, RecordingTransport]
                                                   ) -> None:
    dead = RecordingTransport("node2", default=Reply(raises=Refused(
        "node2 (10.99.0.12:22): unreachable over SSH: timed out")))
    transports["node2"] = dead
    s = gather(targets, transports, fake_io(http_ok(), down={"10.99.0.12"}))
    assert len(dead.calls) == 1
    n2 = s.node("node2")
    why = "node2 unreachable: node2 (10.99.0.12:22): unreachable over SSH: timed out"
    assert n2.postgres.error == n2.router.error == n2.disk.error == why
    assert s.host("node2").ssh.error.endswith("timed out")
    assert n2.redis.error.startswith("Error 111")
    names = {c.name for c in run_checks(s) if not c.ok}
    assert {"ssh.node2", "etcd.members", "redis.replica.node2"} <= names
    assert "etcd.quorum" not in names


def test_a_host_that_stops_answering_midway_is_not_asked_again(
        targets: Targets, transports: dict[str, RecordingTransport]) -> None:
    t = transports["node1"]
    t.on(psql(), Reply(raises=Refused("node1: SSH connection lost")))
    s = gather(targets, transports, fake_io(http_ok()))
    n1 = s.node("node1")
    assert n1.postgres.error == "node1: SSH connection lost"
    assert n1.disk.error.startswith("skipped: node1 stopped answering")
    assert t.commands[-1] == tuple(psql())


def test_patroni_cluster_from_the_second_node_and_missing_sentinel_password(
        tmp_path: Path, transports: dict[str, RecordingTransport]) -> None:
    inv = load_inventory(write_inventory(tmp_path))
    targets = targets_from_params(UpgradeParams(inv, ReadOnlySecrets(
        tmp_path / "secrets" / "generated")))
    assert targets.missing_secrets == ("pgbouncer_admin_password", "replication_password",
                                       "sentinel_password", "vrrp_secret")[1:]
    assert not (tmp_path / "secrets" / "generated").exists()  # observing creates nothing
    http = http_ok()
    del http["http://10.99.0.11:8008/cluster"]
    s = gather(targets, transports, fake_io(http))
    assert s.patroni.value is not None
    assert s.host("node1").sentinel.error.startswith("no Sentinel password generated")
    assert s.missing_secrets == targets.missing_secrets


def test_sentinel_noquorum_arrives_as_an_error_reply(
        targets: Targets, transports: dict[str, RecordingTransport]) -> None:
    io = fake_io(http_ok())
    base = io.redis

    def client(ep: Endpoint, pw: object) -> FakeRedis:
        c = base(ep, pw)
        if ep.port == 26379 and ep.host == "10.99.0.13":
            c.replies[("SENTINEL", "CKQUORUM", "CMS-CACHE")] = redis.ResponseError(
                "NOQUORUM 1 usable Sentinels. Not enough available Sentinels to reach the "
                "majority and authorize a failover")
        return c

    before = {c.name for c in run_checks(gather(targets, transports, io)) if not c.ok}
    s = gather(targets, transports, Io(io.http, client, io.clock))
    w = s.host("witness").sentinel.value
    assert w is not None and not w.quorum_ok and w.usable == 1
    after = {c.name for c in run_checks(s) if not c.ok}
    assert after - before == {"sentinel.quorum"}


def test_targets_follow_upgrade_params(targets: Targets) -> None:
    n1 = targets.node("node1")
    assert n1.patroni_url == "http://10.99.0.11:8008"
    assert n1.router_socket == "/run/haproxy/hapair-router.sock"
    assert [h.url for h in n1.http] == ["http://10.99.0.11:8000/health/",
                                        "http://10.99.0.11:3000/api/health",
                                        "http://10.99.0.11:80/health/"]
    assert n1.vip_interface == "eth0" and targets.vip == "10.99.0.10"
    assert (n1.pgbouncer_port, n1.pgbouncer_admin) == (6432, "hapair_admin")
    assert targets.leader_key == "/service/cms/leader"
    assert targets.sentinel_master == "cms-cache" and targets.missing_secrets == ()
    assert [(h.name, h.etcd_url, str(h.sentinel)) for h in targets.hosts] == [
        ("node1", "http://10.99.0.11:2379", "10.99.0.11:26379"),
        ("node2", "http://10.99.0.12:2379", "10.99.0.12:26379"),
        ("witness", "http://10.99.0.13:2379", "10.99.0.13:26379")]
    assert targets.front_door_url == "http://10.99.0.10:80/health/"
    assert targets.etcd_members == 3


def test_newest_backup_manifests_are_read_within_the_pass(
        targets: Targets, transports: dict[str, RecordingTransport]) -> None:
    from hapair.workflows.backup.model import Manifest

    base = "/var/lib/hapair/backups"
    t = transports["node2"]
    t.on(list_backups_argv(base), stdout="20250301T021500Z-logical\n20250302T021500Z-logical\n"
                                         "20250302T030000Z-physical\n")
    manifest = Manifest(id="20250302T021500Z-logical", kind="logical", cluster="cms",
                        source={}, postgres={}, files=(), started_at="2025-03-02T02:15:00Z",
                        finished_at="2025-03-02T02:16:40Z", tools={}).to_dict()
    t.on(["cat", "--", f"{base}/20250302T021500Z-logical/manifest.json"],
         stdout=json.dumps(manifest))
    t.on(["cat", "--", f"{base}/20250302T030000Z-physical/manifest.json"], returncode=1,
         stderr="cat: …/manifest.json: No such file or directory\n")
    s = gather(targets, transports, fake_io(http_ok()))
    seen = s.node("node2").backups.value
    assert seen is not None
    assert [(b.id, b.verified, b.problem) for b in seen] == [
        ("20250302T030000Z-physical", None, "no manifest.json"),
        ("20250302T021500Z-logical", None, "")]
    assert seen[1].finished_at is not None and seen[1].finished_at - seen[1].taken_at == 100
    assert not any(c[0] == "cat" and "20250301" in c[-1] for c in t.commands)  # newest only
