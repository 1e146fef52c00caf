"""`status`, `check` and `monitor` on compose hosts: where each probe runs (the exact commands
through the containers' shells), PgBouncer not applicable, a stopped container or a lost host
as facts, and the CLI no longer refusing compose inventories."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from rich.console import Console
from ruamel.yaml import YAML
from test_observe_cli import run
from test_observe_gather import COMPONENTS, DATA, GENERATED, fake_io, http_ok

from hapair.cli.observe import check_document, status_document
from hapair.components.common import Endpoint
from hapair.components.pgdump import PgConn
from hapair.components.router.stats import show_stat_argv
from hapair.errors import Refused
from hapair.exec.recording import RecordingTransport, Reply
from hapair.exec.transport import Transport
from hapair.inventory import Inventory, load_inventory
from hapair.monitor import SnapshotCollector, registry_with
from hapair.monitor.metrics import Observed
from hapair.observe import Io, ReadOnlySecrets, evaluate, gather, run_checks, targets_from_params
from hapair.observe.probes import PG_STATUS_SQL, df_argv, list_backups_argv
from hapair.observe.render import render_check, render_status
from hapair.observe.snapshot import Fact, PairSnapshot
from hapair.observe.targets import Targets
from hapair.workflows.ops.pair import router_admin_socket
from hapair.workflows.upgrade.params import UpgradeParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backup"))
from backup_fakes import write_inventory  # noqa: E402

PGDATA = "/var/lib/postgresql/data/pgdata"
PG_BIN = "/usr/lib/postgresql/17/bin"
APP_FILE = "/opt/cms/compose/docker-compose.yml"
ADDR = {"node1": "10.99.0.11", "node2": "10.99.0.12", "witness": "10.99.0.13"}


def compose_inventory_file(tmp_path: Path) -> Path:
    """examples/inventory.yaml with every host on the compose runtime, as the compose lab
    (and `hapair init`) describe a stack: PGDATA and the binaries as the image has them."""
    path = write_inventory(tmp_path)
    yaml = YAML(typ="safe", pure=True)
    data = yaml.load(path.read_text())
    for h in data["hosts"]:
        h.pop("supervisor", None)
        h["runtime"] = "compose"
        if "witness" in h["roles"]:
            h["compose"] = {"project": "cms-hapair",
                            "files": [f"/opt/hapair/cms/{h['name']}/docker-compose.hapair.yml"]}
        else:
            h["compose"] = {"project": "cms", "files": [APP_FILE],
                            "env_files": [f"/opt/cms/compose/.env.{h['name']}"],
                            "services": {"postgres": "postgres", "redis": "redis",
                                         "backend": "backend"}}
    data["services"]["postgres"].update(version=17, data_dir=PGDATA, bin_dir=PG_BIN)
    with path.open("w") as fh:
        yaml.dump(data, fh)
    return path


def generated(tmp_path: Path) -> Path:
    gen = tmp_path / "secrets" / "generated"
    gen.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in GENERATED:
        (gen / name).write_text(f"generated-{name}\n")
    return gen


@pytest.fixture
def inv(tmp_path: Path) -> Inventory:
    path = compose_inventory_file(tmp_path)
    generated(tmp_path)
    return load_inventory(path)


@pytest.fixture
def targets(inv: Inventory, tmp_path: Path) -> Targets:
    return targets_from_params(UpgradeParams(inv, ReadOnlySecrets(
        tmp_path / "secrets" / "generated")))


# --- the commands ---------------------------------------------------------------------------


def pair_cli(host: str) -> list[str]:
    """hapair's project on `host` (the witness's inventory names it directly)."""
    return ["docker", "compose", "-p", "cms-hapair", "-f",
            f"/opt/hapair/cms/{host}/docker-compose.hapair.yml"]


def etcdctl(*args: str) -> list[str]:
    return ["etcdctl", "--endpoints=http://127.0.0.1:2379", "--dial-timeout=2s",
            "--command-timeout=3s", *args]


def in_etcd(host: str, *args: str) -> list[str]:
    return [*pair_cli(host), "exec", "-T", "hapair-etcd", *etcdctl(*args)]


def psql_in_patroni(host: str) -> list[str]:
    return [*pair_cli(host), "exec", "-T", "-u", "postgres", "-e", "PGCONNECT_TIMEOUT=5",
            "-e", "PGUSER=cms", "hapair-patroni",
            f"{PG_BIN}/psql", "-h", "/var/run/postgresql", "-p", "5432", "-U", "cms", "-w",
            "-d", "postgres", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"]


def df_in_patroni(host: str) -> list[str]:
    return [*pair_cli(host), "exec", "-T", "hapair-patroni", *df_argv(PGDATA)]


def router_socket(host: str) -> str:
    return f"/opt/hapair/cms/{host}/router/run/hapair-router.sock"


def router_csv() -> str:
    """node1 primary and Redis master, as each node's router sees them."""
    text = (COMPONENTS / "haproxy" / "router_two_redis_masters.csv").read_text()
    text = text.replace("postgres,node1,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN",
                        "postgres,node1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP")
    text = text.replace("redis,node1,", "redis_node1,node1,")
    return text.replace("redis,node2,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP",
                        "redis_node2,node2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN")


def compose_host(name: str, primary: bool) -> RecordingTransport:
    t = RecordingTransport(name, default=Reply(1, stderr="unexpected command"))
    t.on(["true"])
    t.on(["docker", "compose", "version"], stdout="Docker Compose version v2.29.7\n")
    url = "http://127.0.0.1:2379"
    t.on(in_etcd(name, "endpoint", "health", "-w", "json"),
         stdout=json.dumps([{"endpoint": url, "health": True}]))
    t.on(in_etcd(name, "endpoint", "status", "-w", "json"),
         stdout=json.dumps([{"Endpoint": url, "Status": {
             "header": {"member_id": {"node1": 11, "node2": 12}.get(name, 13)},
             "leader": 13, "raftTerm": 3, "version": "3.4.23"}}]))
    t.on_prefix(in_etcd(name, "get"), stdout=(DATA / "etcd_get_leader.json").read_text())
    t.on_prefix(in_etcd(name, "lease"), stdout=(DATA / "etcd_lease.json").read_text())
    if name == "witness":
        return t
    t.on(psql_in_patroni(name), stdout=(DATA / ("pg_status_primary.txt" if primary else
                                                 "pg_status_standby.txt")).read_text())
    t.on(df_in_patroni(name), stdout=(DATA / "df_tmp.txt").read_text())
    t.on_prefix(["python3", "-c"], stdout=router_csv())
    t.on(["ip", "-o", "addr", "show", "dev", "eth0"], stdout=(
        COMPONENTS / "keepalived" / ("ip_addr_with_vip.txt" if primary else
                                     "ip_addr_without_vip.txt")).read_text())
    # the compose upgrade's dump is a file beside them: the listing names directories only
    t.on(list_backups_argv("/var/lib/hapair/backups"), stdout="")
    return t


def pair_io(down: frozenset[str] = frozenset()) -> Io:
    """The controller's view of a healthy pair: node2's Redis replicates from node1."""
    io = fake_io(http_ok(), down=set(down))
    base = io.redis

    def client(ep: Endpoint, password: object) -> Any:
        c = base(ep, password)
        if ep == Endpoint(ADDR["node2"], 6379):
            info = c.replies[("INFO", "REPLICATION")]
            c.replies[("INFO", "REPLICATION")] = info.replace(
                "master_host:127.0.0.1", f"master_host:{ADDR['node1']}").replace(
                "master_port:18520", "master_port:6379")
        return c

    return Io(io.http, client, io.clock)


@pytest.fixture
def transports() -> dict[str, RecordingTransport]:
    return {"node1": compose_host("node1", True), "node2": compose_host("node2", False),
            "witness": compose_host("witness", False)}


# --- targets ----------------------------------------------------------------------------------


def test_targets_put_the_tools_in_the_containers(targets: Targets, inv: Inventory) -> None:
    n1 = targets.node("node1")
    assert n1.pg == PgConn(PG_BIN, 5432, "/var/run/postgresql", user="cms")
    assert n1.pg_env == {"PGUSER": "cms"} and n1.data_dir == PGDATA
    assert n1.router_socket == router_socket("node1")
    assert n1.backup_dir == "/var/lib/hapair/backups"
    assert not n1.pgbouncer and targets.storage is None
    assert [(h.name, h.etcd_url, dict(h.etcd_env), h.compose == inv.host(h.name))
            for h in targets.hosts] == [
        (n, "http://127.0.0.1:2379", {}, True) for n in ("node1", "node2", "witness")]
    # the controller's probes are unchanged: the ports are published on the private address
    assert n1.patroni_url == "http://10.99.0.11:8008" and str(n1.redis) == "10.99.0.11:6379"
    assert targets.host("witness").sentinel is not None


def test_router_socket_is_where_switchover_drives_it(tmp_path: Path, inv: Inventory) -> None:
    (tmp_path / "native").mkdir()
    native = load_inventory(write_inventory(tmp_path / "native"))
    targets = targets_from_params(UpgradeParams(inv, ReadOnlySecrets(tmp_path / "none")))
    project = inv.host("node1").compose.project  # type: ignore[union-attr]
    assert targets.node("node1").router_socket == (
        f"/opt/hapair/{project}/node1/router/run/hapair-router.sock")
    assert router_admin_socket(native.host("node1")) == "/run/haproxy/hapair-router.sock"


# --- one pass -----------------------------------------------------------------------------------


def test_each_probe_runs_where_its_server_runs(targets: Targets,
                                               transports: dict[str, RecordingTransport]) -> None:
    s = gather(targets, transports, pair_io())
    t = transports["node1"]
    assert t.commands == [
        ("true",),
        ("docker", "compose", "version"),
        tuple(in_etcd("node1", "endpoint", "health", "-w", "json")),
        tuple(in_etcd("node1", "endpoint", "status", "-w", "json")),
        tuple(in_etcd("node1", "get", "/service/cms/leader", "-w", "json")),
        tuple(in_etcd("node1", "lease", "timetolive", "e60a2159fac4005", "-w", "json")),
        tuple(psql_in_patroni("node1")),
        tuple(df_in_patroni("node1")),
        tuple(show_stat_argv(router_socket("node1"))),  # the host's python3
        ("ip", "-o", "addr", "show", "dev", "eth0"),
        tuple(list_backups_argv("/var/lib/hapair/backups")),
    ]
    # the compose CLI runs as the SSH user; psql's user goes to `exec -u`, its query on stdin;
    # no `env` wrapper around etcdctl (the etcd image is distroless)
    assert all(c.user is None and c.env is None for c in t.calls)
    (sql,) = [c for c in t.calls if c.argv == tuple(psql_in_patroni("node1"))]
    assert sql.input == PG_STATUS_SQL.encode()
    assert transports["witness"].commands == [
        ("true",), ("docker", "compose", "version"),
        *(tuple(in_etcd("witness", *a)) for a in (
            ("endpoint", "health", "-w", "json"), ("endpoint", "status", "-w", "json"),
            ("get", "/service/cms/leader", "-w", "json"),
            ("lease", "timetolive", "e60a2159fac4005", "-w", "json")))]
    n1, n2 = s.nodes
    assert s.primary == "node1" and n2.postgres.value is not None
    assert n1.disk.value is not None and n1.disk.value.path == PGDATA
    assert n1.vip.value is True and n2.vip.value is False
    assert n1.backups.value == () and n1.router.ok
    assert s.leader_key.value is not None and s.leader_key.value.holder == "node1"
    assert all(h.etcd.value is not None and h.etcd.value.healthy for h in s.hosts)
    assert s.storage == Fact()


def test_pgbouncer_is_not_applicable_in_check_status_and_metrics(
        targets: Targets, transports: dict[str, RecordingTransport]) -> None:
    s = gather(targets, transports, pair_io())
    assert [n.pgbouncer for n in s.nodes] == [Fact(), Fact()]
    assert not any("pgbouncer" in " ".join(c) for t in transports.values() for c in t.commands)
    checks = run_checks(s)
    assert [c.name for c in checks if not c.ok] == []
    assert not [c for c in checks if c.name.startswith(("pgbouncer.", "storage."))]
    assert evaluate(s) == []
    doc = status_document(s)
    assert [n["pgbouncer"] for n in doc["nodes"]] == [None, None]
    status, check = Console(record=True, width=200), Console(record=True, width=200)
    render_status(doc, status)
    (row,) = [line for line in status.export_text().splitlines() if "node2" in line
              and "replica" in line]
    assert "│ n/a " in row  # the PgBouncer column
    render_check(check_document(s), check)
    assert "pgbouncer" not in check.export_text().lower()
    collector = SnapshotCollector()
    collector.update(Observed(s, checks, [], {}, {}))
    metrics = generate_latest(registry_with(collector)).decode()
    assert 'hapair_pg_role{node="node1",role="primary"} 1.0' in metrics
    assert "hapair_pgbouncer_paused{" not in metrics
    assert 'check="pgbouncer.' not in metrics


def test_a_stopped_container_is_its_probes_answer_not_a_dead_host(
        targets: Targets, transports: dict[str, RecordingTransport]) -> None:
    t = transports["node2"]
    stopped = Reply(1, stderr="service \"hapair-patroni\" is not running\n")
    t.on(psql_in_patroni("node2"), stopped)
    t.on(df_in_patroni("node2"), stopped)
    s = gather(targets, transports, pair_io())
    n2 = s.node("node2")
    assert n2.postgres.error == 'psql: service "hapair-patroni" is not running'
    assert n2.disk.error == 'df: service "hapair-patroni" is not running'
    assert n2.router.ok and n2.backups.ok and n2.vip.value is False  # the host still answers
    assert n2.pgbouncer == Fact()
    failing = {c.name for c in run_checks(s) if not c.ok}
    assert failing == {"postgres.node2", "disk.node2"}  # the primary still lists it streaming


def test_a_host_lost_in_a_container_command_is_not_asked_again(
        targets: Targets, transports: dict[str, RecordingTransport]) -> None:
    t = transports["node1"]
    t.on(psql_in_patroni("node1"), Reply(raises=Refused("node1: SSH connection lost")))
    s = gather(targets, transports, pair_io())
    n1 = s.node("node1")
    assert n1.postgres.error == "node1: SSH connection lost"
    assert n1.disk.error.startswith("skipped: node1 stopped answering")
    assert n1.router.error.startswith("skipped: node1 stopped answering")
    assert n1.pgbouncer == Fact()
    assert t.commands[-1] == tuple(psql_in_patroni("node1"))


def test_an_unreachable_compose_host_keeps_pgbouncer_not_applicable(
        targets: Targets, transports: dict[str, RecordingTransport]) -> None:
    transports["node2"] = RecordingTransport("node2", default=Reply(raises=Refused(
        "node2 (10.99.0.12:22): unreachable over SSH: timed out")))
    s = gather(targets, transports, pair_io(frozenset({"10.99.0.12"})))
    n2 = s.node("node2")
    assert n2.postgres.error.startswith("node2 unreachable") and n2.pgbouncer == Fact()
    assert len(transports["node2"].calls) == 1
    assert not [c for c in run_checks(s) if c.name.startswith("pgbouncer.")]


def test_no_compose_cli_is_each_container_probe_s_answer(
        targets: Targets, transports: dict[str, RecordingTransport]) -> None:
    t = transports["witness"]
    t.on(["docker", "compose", "version"], returncode=1, stderr="docker: 'compose' is not a "
         "docker command.")
    t.on(["docker-compose", "version"], returncode=127, stderr="docker-compose: not found")
    s = gather(targets, transports, pair_io())
    w = s.host("witness")
    assert w.ssh.ok and "no Docker Compose CLI" in w.etcd.error
    assert {c.name for c in run_checks(s) if not c.ok} == {"etcd.members"}


# --- the CLI --------------------------------------------------------------------------------------


def test_status_and_check_run_on_a_compose_inventory(
        tmp_path: Path, transports: dict[str, RecordingTransport],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The real SSH source (no refusal any more), its gather given the recorded hosts."""
    path = compose_inventory_file(tmp_path)
    generated(tmp_path)
    seen: list[Targets] = []

    def fake_gather(tg: Targets, _t: Mapping[str, Transport], *a: Any, **k: Any
                    ) -> PairSnapshot:
        seen.append(tg)
        return gather(tg, transports, pair_io())

    monkeypatch.setattr("hapair.cli.observe.gather", fake_gather)
    assert run(["status", "-i", str(path), "-o", "json"], {}) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["primary"] == "node1" and doc["redis_masters"] == ["node1"]
    assert seen[0].node("node1").router_socket == router_socket("node1")
    transports["node2"].on(psql_in_patroni("node2"),
                           Reply(1, stderr="service \"hapair-patroni\" is not running"))
    assert run(["check", "-i", str(path), "-o", "json"], {}) == 4
    doc = json.loads(capsys.readouterr().out)
    assert doc["failing"] == ["postgres.node2"]


@pytest.fixture(autouse=True)
def _no_ssh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Nothing here may open a real SSH connection."""
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a unit test tried to reach a host")

    monkeypatch.setattr("hapair.exec.ssh.SSHTransport.run", refuse, raising=False)
    yield
