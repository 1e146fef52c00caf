"""The storage workflows over a RecordingTransport and a fake runtime: which commands, files
and service calls each step makes, in which order (nothing runs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hapair.components.common import Plain
from hapair.components.storage import replication as repl
from hapair.components.storage import router as s3router
from hapair.components.storage import writer as s3writer
from hapair.components.storage.site import S3Credentials, Site
from hapair.errors import CommandFailed, StepFailed
from hapair.exec.recording import RecordingTransport, Reply
from hapair.exec.runtime import ServiceSpec, ServiceState, ServiceStatus
from hapair.exec.supervisor import SupervisorRuntime
from hapair.inventory.load import load_inventory
from hapair.inventory.model import Inventory
from hapair.workflows.context import WorkflowContext
from hapair.workflows.storage import (
    StorageNode,
    StorageSetup,
    install_router,
    install_routing,
    install_writer,
    replication_status,
    router_params,
    setup_from_inventory,
    start_replication,
    start_two_way,
    storage_nodes,
    writer_params,
)

REPO = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parent / "data"
N1 = Site("node1", "10.99.0.11")
N2 = Site("node2", "10.99.0.12")
SETUP = StorageSetup("s3", ("media-public", "media-private"),
                     S3Credentials(Plain("AKIAEXAMPLE"), Plain("secret-value")))


class FakeRuntime:
    def __init__(self, running: set[str] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.running = set(running or ())
        self.specs: dict[str, ServiceSpec] = {}

    def define(self, spec: ServiceSpec) -> None:
        self.calls.append(("define", spec.name))
        self.specs[spec.name] = spec
        self.running.add(spec.name)

    def remove(self, name: str) -> None:
        self.calls.append(("remove", name))
        self.running.discard(name)

    def start(self, name: str) -> None:
        self.calls.append(("start", name))
        self.running.add(name)

    def stop(self, name: str) -> None:
        self.calls.append(("stop", name))

    def restart(self, name: str) -> None:
        self.calls.append(("restart", name))

    def status(self, name: str) -> ServiceStatus:
        state = ServiceState.RUNNING if name in self.running else ServiceState.ABSENT
        return ServiceStatus(name, state)

    def status_all(self) -> list[ServiceStatus]:
        return [self.status(n) for n in sorted(self.running)]

    def logs(self, name: str, lines: int = 100) -> str:
        return ""


class MovingTransport(RecordingTransport):
    """Records like RecordingTransport and also does `mv -f A B` on its files (the
    installers compare the installed file with the new one)."""

    def run(self, argv, **kw):  # type: ignore[no-untyped-def,override]
        result = super().run(argv, **kw)
        if list(argv[:2]) == ["mv", "-f"] and argv[2] in self.files:
            self.files[argv[3]] = self.files.pop(argv[2])
        return result


def node(site: Site, running: set[str] | None = None) -> StorageNode:
    return StorageNode(site, MovingTransport(site.name), FakeRuntime(running))


def rt(n: StorageNode) -> FakeRuntime:
    assert isinstance(n.runtime, FakeRuntime)
    return n.runtime


def tr(n: StorageNode) -> RecordingTransport:
    assert isinstance(n.transport, RecordingTransport)
    return n.transport


def test_start_replication_installs_then_starts_on_receiver() -> None:
    writer, receiver = node(N1), node(N2)
    check = start_replication(SETUP, writer, receiver)
    assert check.ok and check.reason == "node2 pulls from node1 every 5s as the writer allows"
    t = receiver.transport
    assert isinstance(t, RecordingTransport)
    assert [c.kind for c in t.calls] == ["run", "run", "write_file", "write_file"]
    assert t.commands == [("install", "-d", "-m", "0755", "/etc/hapair/storage"),
                          ("install", "-d", "-m", "0750", "-o", "root", "/var/lib/hapair/storage")]
    conf = t.files["/etc/hapair/storage/rclone.conf"]
    assert (conf.mode, conf.owner) == (0o600, "root")
    assert "[node1]" in conf.data.decode() and "[node2]" in conf.data.decode()
    assert t.files["/etc/hapair/storage/replicate.sh"].mode == 0o755
    assert "PRIMARY_URL=http://10.99.0.11:8008/primary" in tr(receiver).text(
        "/etc/hapair/storage/replicate.sh")
    assert rt(receiver).calls == [("define", repl.PROGRAM), ("restart", repl.PROGRAM)]
    assert tr(writer).calls == []  # the source is not touched


def test_two_way_pulls_on_both_nodes() -> None:
    n1, n2 = node(N1), node(N2, )
    checks = start_two_way(SETUP, n1, n2)
    assert [c.ok for c in checks] == [True, True]
    s1 = tr(n1).text("/etc/hapair/storage/replicate.sh")
    s2 = tr(n2).text("/etc/hapair/storage/replicate.sh")
    assert '"node2:$bucket" "node1:$bucket"' in s1 and "10.99.0.12:8008/primary" in s1
    assert '"node1:$bucket" "node2:$bucket"' in s2 and "10.99.0.11:8008/primary" in s2
    # one rclone.conf content whichever way the node pulls
    assert tr(n1).files["/etc/hapair/storage/rclone.conf"].data == \
        tr(n2).files["/etc/hapair/storage/rclone.conf"].data


def test_minio_two_way_is_one_site_replication() -> None:
    setup = StorageSetup("minio", SETUP.buckets, SETUP.credentials)
    n1, n2 = node(N1), node(N2)
    tr(n1).on_prefix(["/usr/local/bin/mc"], stdout=(DATA / "mc_info_enabled.json").read_text())
    checks = start_two_way(setup, n1, n2)
    assert len(checks) == 1 and checks[0].ok
    assert tr(n2).calls == [] and rt(n1).calls == [] and rt(n2).calls == []


def test_minio_add_verified() -> None:
    setup = StorageSetup("minio", SETUP.buckets, SETUP.credentials)
    writer, receiver = node(N1), node(N2)
    t = writer.transport
    assert isinstance(t, RecordingTransport)
    info = ["/usr/local/bin/mc", "--config-dir", "/etc/hapair/storage/mc", "--json",
            "--no-color", "admin", "replicate", "info", "node1"]
    t.on(info, Reply(stdout=(DATA / "mc_info_disabled.json").read_text()),
         Reply(stdout=(DATA / "mc_info_enabled.json").read_text()))
    t.on_prefix(info[:-2] + ["add"], stdout=(DATA / "mc_add_success.json").read_text())
    check = start_replication(setup, writer, receiver)
    assert check.reason == "MinIO site replication enabled between node1, node2"
    assert [c[5:] for c in t.commands[1:]] == [
        ("admin", "replicate", "info", "node1"),
        ("admin", "replicate", "add", "node1", "node2"),
        ("admin", "replicate", "info", "node1"),
    ]
    cfg = t.files["/etc/hapair/storage/mc/config.json"]
    assert cfg.mode == 0o600 and json.loads(cfg.data)["aliases"]["node2"]["accessKey"]
    assert tr(receiver).calls == []


def test_minio_add_refused_raises() -> None:
    setup = StorageSetup("minio", SETUP.buckets, SETUP.credentials)
    writer = node(N1)
    t = writer.transport
    assert isinstance(t, RecordingTransport)
    t.on_prefix(["/usr/local/bin/mc"], stdout=(DATA / "mc_add_partial.json").read_text())
    with pytest.raises(StepFailed, match="only one cluster may have data"):
        start_replication(setup, writer, node(N2))


RELOAD = ("/usr/sbin/nginx", "-e", "stderr", "-p", "/var/lib/hapair/s3-router",
          "-c", "/etc/hapair/storage/router.conf", "-s", "reload")
PS = ("ps", "-o", "pid=,args=", "--ppid", "41")


@pytest.mark.parametrize("running", [False, True])
def test_install_router_tests_before_replacing(running: bool) -> None:
    n = node(N2, running={s3router.PROGRAM} if running else set())
    tr(n).write_file("/var/lib/hapair/s3-router/nginx.pid", "41\n")
    tr(n).on(PS, Reply(stdout=" 50 nginx: worker process\n"),  # before the reload
             Reply(stdout=" 50 nginx: worker process\n 60 nginx: worker process\n"),
             Reply(stdout=" 50 nginx: worker process is shutting down\n"
                          " 60 nginx: worker process\n"))
    p = install_router(n, N1)
    assert p.write_to == "127.0.0.1:9011"
    t = n.transport
    assert isinstance(t, RecordingTransport)
    new = "/etc/hapair/storage/router.conf.new"
    assert t.commands[1] == ("/usr/sbin/nginx", "-e", "stderr", "-p", "/var/lib/hapair/s3-router",
                             "-c", new, "-t", "-q")
    assert t.commands[2] == ("mv", "-f", new, "/etc/hapair/storage/router.conf")
    if running:  # reloaded, and waited until no old worker accepts connections
        assert t.commands[3:] == [PS, RELOAD, PS, PS]
        assert rt(n).calls == []
    else:
        assert rt(n).calls == [("define", s3router.PROGRAM), ("start", s3router.PROGRAM)]
    before = len(t.commands)
    install_router(n, N1)  # same config again: nothing tested, moved or reloaded
    assert t.commands[before:] == [t.commands[0]]


def test_install_router_keeps_old_config_when_test_fails() -> None:
    n = node(N2)
    t = n.transport
    assert isinstance(t, RecordingTransport)
    t.on_prefix(["/usr/sbin/nginx"], returncode=1, stderr="nginx: [emerg] bad")
    with pytest.raises(CommandFailed):
        install_router(n, N1)
    assert ("mv", "-f", "/etc/hapair/storage/router.conf.new",
            "/etc/hapair/storage/router.conf") not in t.commands
    assert t.commands[-1] == ("rm", "-f", "/etc/hapair/storage/router.conf.new")


def test_install_writer_checks_starts_then_reloads_on_change() -> None:
    n1, n2 = node(N1), node(N2)
    p = install_writer(n2, n1)
    t = tr(n2)
    new = "/etc/hapair/storage/writer.cfg.new"
    assert t.commands == [
        ("install", "-d", "-m", "0755", "/etc/hapair/storage", "/run"),
        ("/usr/sbin/haproxy", "-c", "-q", "-f", new),
        ("mv", "-f", new, "/etc/hapair/storage/writer.cfg")]
    assert rt(n2).calls == [("define", s3writer.PROGRAM), ("start", s3writer.PROGRAM)]
    assert [x.site.name for x in p.targets] == ["node1", "node2"]
    # running with pid 77, config changed (another Patroni port): checked, moved, SIGUSR2
    running = StorageNode(N2, t, _Pid(77), patroni=("10.99.0.12", 8009))
    t.calls.clear()
    install_writer(running, n1)
    assert t.commands[-1] == ("kill", "-USR2", "77")
    t.calls.clear()
    install_writer(running, n1)  # unchanged: nothing but the directory
    assert t.commands == [("install", "-d", "-m", "0755", "/etc/hapair/storage", "/run")]


class _Pid(FakeRuntime):
    def __init__(self, pid: int) -> None:
        super().__init__({s3writer.PROGRAM})
        self.pid = pid

    def status(self, name: str) -> ServiceStatus:
        return ServiceStatus(name, ServiceState.RUNNING, self.pid)


def test_install_routing_writer_before_router() -> None:
    n1, n2 = node(N1), node(N2)
    install_routing(n2, n1)
    assert rt(n2).calls == [("define", s3writer.PROGRAM), ("start", s3writer.PROGRAM),
                            ("define", s3router.PROGRAM), ("start", s3router.PROGRAM)]
    assert tr(n1).calls == []


def test_replication_status_reads_state() -> None:
    n = node(N2)
    assert not replication_status(SETUP, n, "node1").ok  # no state file yet
    state = {"source": "node1", "target": "node2", "mode": "window", "ok": True, "started": 990,
             "finished": 991, "last_ok": 990, "last_full_ok": 900, "interval": 5}
    n.transport.write_file(repl.ReplicationSettings().state_path, json.dumps(state))
    check = replication_status(SETUP, n, "node1", now=1000.0)
    assert (check.ok, check.reason) == (True, "replication node1->node2: last good pass 10s ago")


def example_inventory(tmp_path: Path) -> Inventory:
    shutil.copy(REPO / "examples" / "inventory.yaml", tmp_path / "inventory.yaml")
    for rel, value in [("lab-ssh/id_ed25519", "key"), ("secrets/postgres_password", "p"),
                       ("secrets/postgres_superuser_password", "p"),
                       ("secrets/redis_password", "r"), ("secrets/s3_access_key", "AKIAX"),
                       ("secrets/s3_secret_key", "sk-1")]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(value)
        (tmp_path / rel).chmod(0o600)
    return load_inventory(str(tmp_path / "inventory.yaml"))


def test_setup_from_inventory(tmp_path: Path) -> None:
    setup, sites = setup_from_inventory(example_inventory(tmp_path))
    assert (setup.backend, setup.buckets) == ("s3", ("media-public", "media-private"))
    assert sites == (N1, N2)
    assert setup.credentials.pair() == ("AKIAX", "sk-1")


def test_storage_nodes_from_context(tmp_path: Path) -> None:
    ctx = WorkflowContext.from_inventory(example_inventory(tmp_path))  # nothing connects yet
    setup, (first, second) = storage_nodes(ctx, router={"port": 9100})
    assert (first.name, second.name) == ("node1", "node2")
    assert first.transport is ctx.transports["node1"]
    assert isinstance(second.runtime, SupervisorRuntime)
    assert second.runtime.config == "/etc/supervisor/supervisord.conf"
    p = router_params(second, first.site)
    assert (p.port, p.local, p.peer, p.write_to) == (9100, N2, N1, "127.0.0.1:9011")
    w = writer_params(second, first)
    assert (w.port, [x.primary_url for x in w.targets]) == (
        9011, ["http://10.99.0.11:8008/primary", "http://10.99.0.12:8008/primary"])
    assert second.replication.interval_s == 5 and setup.max_delay_s == 30.0
