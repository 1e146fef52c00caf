"""Real services on loopback for the observation tests (ports 127.0.0.1:18900-18999).

node1 and node2 are this machine reached with LocalTransport; each "node" has its own
PostgreSQL (primary 18901 + synchronous standby 18902 on a slot), Redis (18910 master, 18911
replica), Sentinel (18912-18914 with the witness), etcd member (clients 18920-18922), local
router (real HAProxy from the rendered config: 18940/18941 and 18942/18943), PgBouncer
(18945/18946). HTTP health endpoints and Patroni's REST API are small in-process stubs (Patroni
itself is exercised by the components' adoption test) on 18930-18938.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hapair.components.common import Endpoint, Plain, RenderedFile
from hapair.components.etcd import EtcdMember, EtcdParams, etcd_argv, render_etcd_config
from hapair.components.pgbouncer import (
    PgBouncerParams,
    PgBouncerUser,
    pgbouncer_argv,
    render_pgbouncer_config,
    render_userlist,
)
from hapair.components.pgdump import PgConn
from hapair.components.redis import (
    RedisParams,
    SentinelParams,
    redis_argv,
    render_redis_config,
    render_sentinel_config,
    sentinel_argv,
)
from hapair.components.router import (
    RouterBackend,
    RouterParams,
    RouterSentinel,
    render_router_config,
    router_argv,
)
from hapair.exec.local import LocalTransport
from hapair.observe.targets import HostTarget, HttpTarget, NodeTargets, Targets

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG = {"node1": 18901, "node2": 18902}
REDIS = {"node1": 18910, "node2": 18911}
SENTINEL = {"node1": 18912, "node2": 18913, "witness": 18914}
ETCD = {"node1": (18920, 18923), "node2": (18921, 18924), "witness": (18922, 18925)}
HTTP = {"node1": {"backend": 18930, "frontend": 18931, "lb": 18932},
        "node2": {"backend": 18933, "frontend": 18934, "lb": 18935}}
DOOR, PATRONI = 18936, {"node1": 18937, "node2": 18938}
ROUTER = {"node1": (18940, 18941), "node2": (18942, 18943)}  # (redis, postgres)
PGBOUNCER = {"node1": 18945, "node2": 18946}
WEBHOOK, METRICS, NOTHING = 18950, 18960, 18999
REDIS_PW = Plain('redis "pw" yes')
SENTINEL_PW = Plain("sentinel-pw")
ADMIN_PW = Plain("admin-pw-x")
MASTER_NAME = "cms-cache"
LEADER_KEY = "/service/cms/leader"
DATA = Path(__file__).resolve().parents[2] / "unit" / "components" / "data" / "patroni"


def wait_for(what: str, check: Callable[[], object], timeout: float = 30.0) -> object:
    """Poll until truthy (exceptions count as not yet); bounded."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - not ready yet
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def run(argv: list[str], *, user: str | None = None, stdin: str | None = None,
        env: dict[str, str] | None = None, timeout: float = 60,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    kw = {"user": user, "group": user, "extra_groups": []} if user else {}
    r = subprocess.run(argv, input=stdin, text=True, capture_output=True, timeout=timeout,
                       env=env, cwd="/", check=False, **kw)  # type: ignore[call-overload]
    if check and r.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {r.returncode}: {r.stderr[-1500:]}")
    return r


# --- processes ------------------------------------------------------------------------------


@dataclass
class Procs:
    logdir: Path
    started: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, name: str, argv: list[str], user: str | None = None,
              stop_signal: int = signal.SIGTERM) -> subprocess.Popen[bytes]:
        with open(self.logdir / f"{name}.log", "ab") as log:
            kw = {"user": user, "group": user, "extra_groups": []} if user else {}
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    cwd="/", **kw)  # type: ignore[call-overload]
        proc.stop_signal = stop_signal  # type: ignore[attr-defined]
        self.started[name] = proc
        return proc

    def stop(self, name: str, timeout: float = 20.0) -> None:
        proc = self.started.get(name)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(proc.stop_signal)  # type: ignore[attr-defined]
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def stop_all(self) -> None:
        for name in reversed(list(self.started)):
            self.stop(name)

    def log(self, name: str) -> str:
        path = self.logdir / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def write(f: RenderedFile, owner: str | None = None) -> Path:
    path = Path(f.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, f.mode)
    with os.fdopen(fd, "w") as out:
        out.write(f.content)
    os.chmod(path, f.mode)
    if owner:
        shutil.chown(path, owner, owner)
    return path


def make_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="hapair-observe-"))
    root.chmod(0o755)
    return root


# --- HTTP stubs -------------------------------------------------------------------------------


class Stubs:
    """One tiny HTTP server per port; answers[(port, path)] = (status, body)."""

    def __init__(self) -> None:
        self.answers: dict[tuple[int, str], tuple[int, str]] = {}
        self.servers: list[ThreadingHTTPServer] = []

    def serve(self, port: int) -> None:
        stubs = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                status, body = stubs.answers.get((port, self.path), (404, "not found"))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # HAProxy's checks hang up early; that is not an error here

        server = Server(("127.0.0.1", port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)

    def set(self, port: int, path: str, status: int, body: str = "ok") -> None:
        self.answers[(port, path)] = (status, body)

    def close(self) -> None:
        for s in self.servers:
            s.shutdown()
            s.server_close()


# --- the whole set ----------------------------------------------------------------------------


@dataclass
class Live:
    root: Path
    procs: Procs
    stubs: Stubs
    sock: Path
    lease: str = ""

    def pg(self, node: str) -> str:
        return f"pg-{node}"

    def sql(self, node: str, text: str) -> str:
        return run([str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
                    str(self.sock), "-p", str(PG[node]), "-d", "postgres", "-f", "-"],
                   user="postgres", stdin=text).stdout.strip()

    def etcdctl(self, *args: str, node: str = "node1") -> str:
        env = {"PATH": "/usr/bin:/bin", "ETCDCTL_API": "3"}
        return run(["etcdctl", f"--endpoints=http://127.0.0.1:{ETCD[node][0]}", *args],
                   env=env, timeout=20).stdout

    def transports(self) -> dict[str, LocalTransport]:
        return {n: LocalTransport(n) for n in ("node1", "node2", "witness")}

    def targets(self, **changes: object) -> Targets:
        nodes = tuple(
            NodeTargets(
                name=n, address="127.0.0.1",
                pg=PgConn(str(PG_BIN), PG[n], str(self.sock)),
                data_dir=str(self.root / f"pg-{n}"),
                patroni_url=f"http://127.0.0.1:{PATRONI[n]}",
                redis=Endpoint("127.0.0.1", REDIS[n]),
                http=tuple(HttpTarget(k, f"http://127.0.0.1:{p}/health/")
                           for k, p in HTTP[n].items()),
                router_socket=str(self.root / f"router-{n}.sock"),
                pgbouncer_port=PGBOUNCER[n], pgbouncer_admin="hapair_admin",
                pgbouncer_passfile=str(self.root / "admin.pgpass"),
                vip_interface=None, backup_dir=str(self.root / f"backups-{n}"))
            for n in ("node1", "node2"))
        hosts = tuple(HostTarget(h, "127.0.0.1", f"http://127.0.0.1:{ETCD[h][0]}",
                                 Endpoint("127.0.0.1", SENTINEL[h]))
                      for h in ("node1", "node2", "witness"))
        base: dict[str, object] = dict(
            cluster="cms", durability="sync", database="cms", nodes=nodes, hosts=hosts,
            witness="witness", leader_key=LEADER_KEY, sentinel_master=MASTER_NAME,
            redis_password=REDIS_PW, sentinel_password=SENTINEL_PW, front_door_kind="static",
            front_door_url=f"http://127.0.0.1:{DOOR}/health/", vip=None)
        base.update(changes)
        return Targets(**base)  # type: ignore[arg-type]


def start_postgres(live: Live) -> None:
    root, sock = live.root, live.sock
    run([str(PG_BIN / "initdb"), "-D", str(root / "pg-node1"), "-U", "postgres", "-E", "UTF8",
         "--locale=C", "--auth-local=peer", "--auth-host=reject", "--no-sync"],
        user="postgres", timeout=120)
    common = ["-k", str(sock), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
              "-c", "shared_buffers=16MB", "-c", "max_connections=30"]
    live.procs.spawn("pg-node1", [str(PG_BIN / "postgres"), "-D", str(root / "pg-node1"),
                                  "-p", str(PG["node1"]), *common],
                     user="postgres", stop_signal=signal.SIGINT)
    ready = [str(PG_BIN / "pg_isready"), "-q", "-h", str(sock)]
    wait_for("node1 PostgreSQL", lambda: run([*ready, "-p", str(PG["node1"])],
                                             check=False).returncode == 0)
    live.sql("node1", "CREATE DATABASE cms; SELECT pg_create_physical_replication_slot('node2');")
    run([str(PG_BIN / "pg_basebackup"), "-h", str(sock), "-p", str(PG["node1"]), "-D",
         str(root / "pg-node2"), "-R", "-X", "stream", "-S", "node2", "-c", "fast"],
        user="postgres", timeout=120)
    # cluster_name is the walreceiver's application_name: node2, as Patroni names it
    live.procs.spawn("pg-node2", [str(PG_BIN / "postgres"), "-D", str(root / "pg-node2"),
                                  "-p", str(PG["node2"]), *common, "-c", "cluster_name=node2"],
                     user="postgres", stop_signal=signal.SIGINT)
    wait_for("node2 streaming", lambda: live.sql(
        "node1", "SELECT state FROM pg_stat_replication") == "streaming", 60)
    live.sql("node1", "ALTER SYSTEM SET synchronous_standby_names = 'node2'; "
                      "SELECT pg_reload_conf();")
    wait_for("node2 sync streaming", lambda: live.sql(
        "node1", "SELECT sync_state FROM pg_stat_replication") == "sync", 60)


def start_redis(live: Live) -> None:
    w = live.root
    for n in ("node1", "node2"):
        master = None if n == "node1" else Endpoint("127.0.0.1", REDIS["node1"])
        p = RedisParams(n, "127.0.0.1", REDIS_PW, master=master, port=REDIS[n],
                        bind_loopback=False, appendonly=False,
                        config_path=f"{w}/redis-{n}/redis.conf", data_dir=f"{w}/redis-{n}")
        write(render_redis_config(p))
        live.procs.spawn(f"redis-{n}", redis_argv(p))
    for h, port in SENTINEL.items():
        sp = SentinelParams(h, "127.0.0.1", MASTER_NAME, Endpoint("127.0.0.1", REDIS["node1"]),
                            REDIS_PW, SENTINEL_PW, port=port, bind_loopback=False,
                            down_after_ms=3000, config_path=f"{w}/sentinel-{h}/sentinel.conf",
                            data_dir=f"{w}/sentinel-{h}")
        write(render_sentinel_config(sp))
        live.procs.spawn(f"sentinel-{h}", sentinel_argv(sp))


def start_etcd(live: Live) -> None:
    members = tuple(EtcdMember(h, "127.0.0.1", c, p) for h, (c, p) in ETCD.items())
    for m in members:
        params = EtcdParams(m.name, members, "hapair-observe-test",
                            config_path=f"{live.root}/etcd-{m.name}.yaml",
                            data_dir=f"{live.root}/etcd-{m.name}", listen_loopback=False)
        write(render_etcd_config(params))
        live.procs.spawn(f"etcd-{m.name}", etcd_argv(params))
    wait_for("etcd quorum", lambda: '"health":true' in live.etcdctl("endpoint", "health",
                                                                     "-w", "json"), 60)
    leader_to_witness(live, members)
    live.lease = live.etcdctl("lease", "grant", "900").split()[1]
    live.etcdctl("put", LEADER_KEY, "node1", f"--lease={live.lease}")


def leader_to_witness(live: Live, members: tuple[EtcdMember, ...]) -> None:
    """As the upgrade leaves the pair (decision 0002): etcd's leader on the witness."""
    def status() -> dict:
        return json.loads(live.etcdctl("endpoint", "status", "-w", "json",
                                       node="witness"))[0]["Status"]

    witness_id = status()["header"]["member_id"]
    if status()["leader"] != witness_id:
        run(["etcdctl", f"--endpoints={','.join(m.client_url for m in members)}",
             "move-leader", f"{witness_id:x}"],
            env={"PATH": "/usr/bin:/bin", "ETCDCTL_API": "3"}, timeout=20)
    wait_for("etcd's leader on the witness", lambda: status()["leader"] == witness_id, 30)


def start_stubs(live: Live) -> None:
    s = live.stubs
    for ports in HTTP.values():
        for port in ports.values():
            s.serve(port)
            s.set(port, "/health/", 200)
    s.serve(DOOR)
    s.set(DOOR, "/health/", 200)
    cluster = (DATA / "cluster_sync.json").read_text()
    for n, port in PATRONI.items():
        s.serve(port)
        s.set(port, "/cluster", 200, cluster)
        body = (DATA / f"patroni_{'primary' if n == 'node1' else 'replica'}.json").read_text()
        s.set(port, "/patroni", 200, body)
        s.set(port, "/primary", 200 if n == "node1" else 503, "{}")


def start_routers(live: Live) -> None:
    backends = tuple(RouterBackend(n, "127.0.0.1", pg_port=PG[n], patroni_port=PATRONI[n],
                                   redis_port=REDIS[n]) for n in ("node1", "node2"))
    for n, (redis_port, pg_port) in ROUTER.items():
        params = RouterParams(n, backends, REDIS_PW,
                              sentinel=RouterSentinel(Endpoint("127.0.0.1", SENTINEL[n]),
                                                      MASTER_NAME, SENTINEL_PW),
                              pg_port=pg_port, redis_port=redis_port,
                              config_path=f"{live.root}/router-{n}.cfg",
                              stats_socket=f"{live.root}/router-{n}.sock", user=None,
                              group=None, inter_ms=500, fastinter_ms=250)
        write(render_router_config(params))
        live.procs.spawn(f"router-{n}", router_argv(params))


def start_pgbouncers(live: Live) -> None:
    for n, port in PGBOUNCER.items():
        params = PgBouncerParams(
            n, ("cms",), (PgBouncerUser("cms", Plain("app")),
                          PgBouncerUser("hapair_admin", ADMIN_PW)), "hapair_admin",
            upstream=Endpoint("127.0.0.1", PG["node1"]), port=port,
            config_path=f"{live.root}/pgbouncer-{n}.ini",
            userlist_path=f"{live.root}/userlist-{n}.txt")
        write(render_pgbouncer_config(params), owner="postgres")
        write(render_userlist(params), owner="postgres")
        live.procs.spawn(f"pgbouncer-{n}", pgbouncer_argv(params), user="postgres",
                         stop_signal=signal.SIGINT)
    lines = "".join(f"127.0.0.1:{p}:pgbouncer:hapair_admin:{ADMIN_PW.reveal()}\n"
                    for p in PGBOUNCER.values())
    write(RenderedFile(str(live.root / "admin.pgpass"), lines, mode=0o600), owner="postgres")


def write_backup(live: Live, node: str, backup_id: str, finished: str) -> None:
    from hapair.workflows.backup.model import FileEntry, Manifest

    d = live.root / f"backups-{node}" / backup_id
    d.mkdir(parents=True)
    m = Manifest(id=backup_id, kind="logical", cluster="cms",
                 source={"node": node, "role": "standby"}, postgres={"server_version": "15"},
                 files=(FileEntry("cms.dump", 10, "0" * 64),), started_at=finished,
                 finished_at=finished, tools={"pg_dump": "15"},
                 verification={"result": "passed", "verified_at": finished})
    (d / "manifest.json").write_text(json.dumps(m.to_dict()))
