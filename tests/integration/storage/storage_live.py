"""Helpers of the live storage tests: a two-"node" pair on loopback, each node a real
supervisord in its own temp dir running its S3 site (`rclone serve s3`), a stand-in for its
Patroni's GET /primary (a tiny HTTP server the test flips), and — when the tests ask for
them — the replication program, the HAProxy write selector and the nginx router. Everything
is stopped by the pid we started (supervisord stops its children first).
Ports (127.0.0.1): sites 17001-2, routers 17011-2, write selectors 17021-2, Patroni 17031-2.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from hapair.components.common import Plain
from hapair.components.storage.replication import ReplicationSettings
from hapair.components.storage.site import S3Credentials, Site, SiteServer
from hapair.exec.local import LocalTransport
from hapair.exec.supervisor import SupervisorRuntime
from hapair.workflows.storage import StorageNode, StorageSetup, start_site

T = TypeVar("T")
RCLONE = str(Path(sys.executable).parent / "rclone")
SUPERVISORD = shutil.which("supervisord")
NGINX = "/usr/sbin/nginx"
HAPROXY = "/usr/sbin/haproxy"
BUCKETS = ("media-public", "media-private")
# Awkward on purpose: characters that break ini files, shells and CSV if quoted wrongly.
CREDENTIALS = S3Credentials(Plain("hapairTestAK01"), Plain("s3c\"r#t;=$x'y"))

SUPERVISORD_CONF = """[unix_http_server]
file={d}/supervisor.sock
chmod=0700

[supervisord]
logfile={d}/supervisord.log
pidfile={d}/supervisord.pid
childlogdir={d}/log
nodaemon=true
user=root

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{d}/supervisor.sock

[include]
files = {d}/conf.d/*.conf
"""


def wait_for(check: Callable[[], T], what: str, timeout: float = 20.0, every: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    last = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(every)
        last = check()
    return last


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


class FakePatroni:
    """GET /primary: 200 while `primary` is set, else 503 — as Patroni answers on the leader
    and on a replica. `stop()` makes it unreachable (a crashed node)."""

    def __init__(self, port: int, primary: bool = False) -> None:
        self.primary = primary
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                code = 200 if self.path == "/primary" and me.primary else 503
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@dataclass
class LiveNode:
    name: str
    dir: Path
    site_port: int
    router_port: int
    proc: subprocess.Popen[bytes]
    runtime: SupervisorRuntime
    storage: StorageNode
    patroni: FakePatroni | None = field(default=None)
    writer_port: int = 0

    @property
    def site_program(self) -> str:
        return f"s3-{self.name}"

    def stop_site(self) -> None:
        self.runtime.stop(self.site_program)
        wait_for(lambda: not port_open(self.site_port), f"{self.name}'s site to stop")

    def start_site(self) -> None:
        self.runtime.start(self.site_program)
        wait_for(lambda: port_open(self.site_port), f"{self.name}'s site to listen")

    def show_logs(self) -> None:
        for log in sorted((self.dir / "log").glob("*.log")) + [self.dir / "supervisord.log"]:
            if log.exists() and log.stat().st_size:
                print(f"--- {log} ---\n{log.read_text(errors='replace')[-3000:]}")


def start_node(root: Path, name: str, site_port: int, router_port: int,
               writer_port: int = 0, patroni_port: int = 0) -> LiveNode:
    d = root / name
    for sub in ("conf.d", "log", "data", "cache", "etc", "state", "router"):
        (d / sub).mkdir(parents=True)
    config = d / "supervisord.conf"
    config.write_text(SUPERVISORD_CONF.format(d=d))
    with open(d / "supervisord.out", "wb") as out:
        proc = subprocess.Popen([str(SUPERVISORD), "-n", "-c", str(config)], stdout=out,
                                stderr=subprocess.STDOUT)
    wait_for(lambda: (d / "supervisor.sock").exists() or proc.poll() is not None,
             f"{name}'s supervisord")
    assert proc.poll() is None, f"{name}: supervisord exited at start"
    t = LocalTransport(name)
    rt = SupervisorRuntime(t, str(config), str(d / "conf.d"), log_dir=str(d / "log"))
    server = SiteServer(listen=("127.0.0.1",), port=site_port, data_dir=str(d / "data"),
                        env_file=str(d / "etc" / "s3.env"), cache_dir=str(d / "cache"),
                        rclone=RCLONE, user="root", home=str(d))
    settings = ReplicationSettings(
        interval_s=1, full_every_s=3600, overlap_s=5, window_timeout_s=60, full_timeout_s=120,
        rclone=RCLONE, config_dir=str(d / "etc"), state_dir=str(d / "state"), user="root",
    )
    router: dict[str, Any] = {
        "port": router_port, "prefix": str(d / "router"),
        "config_path": str(d / "etc" / "router.conf"), "user": "root", "worker_user": "root",
        "write_to": f"127.0.0.1:{writer_port}",
    }
    writer: dict[str, Any] = {
        "port": writer_port, "config_path": str(d / "etc" / "writer.cfg"),
        "stats_socket": str(d / "router" / "writer.sock"), "drop_to": None,
    }
    storage = StorageNode(Site(name, "127.0.0.1", site_port), t, rt, settings, router, writer,
                          ("127.0.0.1", patroni_port))
    node = LiveNode(name, d, site_port, router_port, proc, rt, storage, None, writer_port)
    node.patroni = FakePatroni(patroni_port)
    assert start_site(setup(), storage, server, f"s3-{name}") == list(BUCKETS)
    assert port_open(site_port)
    return node


def stop_node(node: LiveNode) -> None:
    """supervisord stops its programs on TERM; we wait for it, by its pid only."""
    if node.patroni is not None:
        node.patroni.stop()
    if node.proc.poll() is None:
        node.proc.send_signal(signal.SIGTERM)
        try:
            node.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait(timeout=10)


@contextlib.contextmanager
def pair(prefix: str = "hapair-storage-") -> Iterator[tuple[LiveNode, LiveNode]]:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    started: list[LiveNode] = []
    failed = True
    try:
        started.append(start_node(root, "node1", 17001, 17011, 17021, 17031))
        started.append(start_node(root, "node2", 17002, 17012, 17022, 17032))
        assert started[0].patroni is not None
        started[0].patroni.primary = True  # node1 holds the PostgreSQL primary to begin with
        yield started[0], started[1]
        failed = False
    finally:
        for n in started:
            stop_node(n)
        if failed:
            for n in started:
                n.show_logs()
        shutil.rmtree(root, ignore_errors=True)


def setup() -> StorageSetup:
    return StorageSetup("s3", BUCKETS, CREDENTIALS)


def client(port: int, **config: Any) -> Any:
    """A boto3 client like the CMS's (path style, SigV4), for a site or a router."""
    import boto3
    from botocore.config import Config

    access, secret = CREDENTIALS.pair()
    cfg = {"s3": {"addressing_style": "path"}, "connect_timeout": 2, "read_timeout": 20,
           "retries": {"total_max_attempts": 1}, "signature_version": "s3v4",
           "request_checksum_calculation": "when_required",
           "response_checksum_validation": "when_required", **config}
    return boto3.session.Session().client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=access,
        aws_secret_access_key=secret, region_name="us-east-1", config=Config(**cfg))


def get_or_none(c: Any, bucket: str, key: str) -> bytes | None:
    try:
        return bytes(c.get_object(Bucket=bucket, Key=key)["Body"].read())
    except c.exceptions.ClientError as exc:
        if exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return None
        raise


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains `text` (our unique temp paths): nothing is left over."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found
