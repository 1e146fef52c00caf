"""The monitor against the live set: /metrics over real HTTP, alerts POSTed to a JSON receiver
on loopback (fire once, resolve once), and `hapair monitor` as a process that serves until
SIGTERM and exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from observe_live import DOOR, METRICS, WEBHOOK, Live, wait_for

from hapair.monitor import MetricsServer, Monitor, SnapshotCollector, WebhookSender, registry_with
from hapair.observe import Limits, failing, gather, run_checks

pytestmark = pytest.mark.integration
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


class Receiver:
    """A JSON webhook receiver: keeps every POSTed body."""

    def __init__(self, port: int) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(WEBHOOK)
    try:
        yield r
    finally:
        r.close()


def test_metrics_and_alerts_over_http(live: Live, receiver: Receiver) -> None:
    targets, transports = live.targets(), live.transports()
    wait_for("every check green", lambda: not failing(run_checks(gather(targets, transports))),
             90)  # Sentinels find each other, routers rise
    collector = SnapshotCollector()
    url = f"http://127.0.0.1:{WEBHOOK}/hook"
    monitor = Monitor(lambda: gather(targets, transports), WebhookSender([url]),
                      limits=Limits(backup_max_age_s=0), repeat_s=3600, collector=collector)
    server = MetricsServer(registry_with(collector), "127.0.0.1", METRICS)
    try:
        assert monitor.poll_once().notifications == [] and receiver.bodies == []
        text = httpx.get(f"http://127.0.0.1:{METRICS}/metrics", timeout=5).text
        assert 'hapair_pg_primary{node="node1"} 1.0' in text
        assert 'hapair_sentinel_ckquorum_ok{sentinel="witness"} 1.0' in text
        assert 'hapair_router_backend_up{node="node2",proxy="postgres",server="node1"} 1.0' in text
        assert "hapair_checks_failing 0.0" in text

        live.stubs.set(DOOR, "/health/", 503)
        monitor.poll_once()
        monitor.poll_once()  # still failing: no second notification
        assert [(b["alert"], b["status"], b["severity"]) for b in receiver.bodies] == [
            ("front_door", "firing", "critical")]
        assert set(receiver.bodies[0]) == {"alert", "severity", "node", "reason", "since",
                                           "status", "cluster"}
        text = httpx.get(f"http://127.0.0.1:{METRICS}/metrics", timeout=5).text
        assert "hapair_front_door_up 0.0" in text and "hapair_checks_failing 1.0" in text
    finally:
        live.stubs.set(DOOR, "/health/", 200)
    try:
        monitor.poll_once()
        assert [b["status"] for b in receiver.bodies] == ["firing", "resolved"]
        assert receiver.bodies[1]["since"] == receiver.bodies[0]["since"]
    finally:
        server.stop()


SCRIPT = """
import sys, contextlib
sys.path.insert(0, {here!r})
from pathlib import Path
import click
from observe_live import Live, Procs, Stubs
from hapair.cli.observe import Source, monitor_cmd
from hapair.exec.local import LocalTransport
from hapair.observe import gather
live = Live(Path({root!r}), Procs(Path({root!r})), Stubs(), Path({sock!r}))

@contextlib.contextmanager
def source(_inv):
    targets, transports = live.targets(), live.transports()
    yield Source(lambda: gather(targets, transports), lambda s: s)

root = click.Group("hapair")
root.add_command(monitor_cmd)
root.main(args=sys.argv[1:], prog_name="hapair", obj={{"observe_source": source}})
"""


def test_monitor_process_serves_until_sigterm(live: Live, receiver: Receiver,
                                              tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tests" / "unit" / "backup"))
    from backup_fakes import write_inventory

    inv = write_inventory(tmp_path)
    code = SCRIPT.format(here=str(HERE), root=str(live.root), sock=str(live.sock))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "monitor", "-i", str(inv), "--listen",
         f"127.0.0.1:{METRICS}", "--interval", "1", "--backup-max-age-hours", "0",
         "--webhook", f"http://127.0.0.1:{WEBHOOK}/hook"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for("/metrics with a snapshot", lambda: "hapair_pg_primary" in httpx.get(
            f"http://127.0.0.1:{METRICS}/metrics", timeout=2).text, 60)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    assert "serving /metrics on http://127.0.0.1:18960/metrics" in err
    assert err.strip().endswith("monitor stopped") and out == ""
