"""The monitor over real HTTP on loopback, fed by scripted snapshots: /metrics scraped from the
monitor's own server, notifications POSTed by the real webhook client to a local receiver.

1. In-process, timestamps scripted: a lag blip shorter than `for_s` sends nothing, a lag held
   fires once and resolves once, a failover is one event naming the old and new primary, and
   /metrics shows the counter and the checks.
2. `hapair monitor` as a process (the real CLI and its inventory `monitor:` section) until
   SIGTERM: a failover between its polls reaches the receiver and /metrics.

127.0.0.1 only, on ports the kernel picks (a fixed port can be taken by another socket on a
busy machine).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel.yaml import YAML

from hapair.monitor import (
    AlertPolicy,
    MetricsServer,
    Monitor,
    SnapshotCollector,
    WebhookSender,
    registry_with,
)
from hapair.monitor.alerts import iso
from hapair.observe import Limits, PairSnapshot
from hapair.observe.snapshot import Fact, ReplicationRow, derive_replication

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "tests" / "unit" / "monitor"))
from monitor_fakes import NOW, led_by, pg_primary  # noqa: E402

pytestmark = pytest.mark.integration


class Receiver:
    """A JSON webhook receiver on loopback: keeps every body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received, lock = self.bodies, threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                with lock:
                    received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def wait_for(what: str, predicate: Callable[[], bool], timeout: float,
             context: Callable[[], str] = lambda: "",
             gone: Callable[[], bool] = lambda: False) -> None:
    """Poll `predicate` until true; fail after `timeout` or as soon as `gone()` (the process
    that should make it true has exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not gone():
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.2)
    raise AssertionError(f"not true: {what}\n{context()}")


def served_port(log: Path) -> int | None:
    """The port the monitor process says it serves /metrics on (it was asked for port 0)."""
    found = re.search(r"serving /metrics on http://127\.0\.0\.1:(\d+)/", log.read_text())
    return int(found.group(1)) if found else None


def process_report(proc: subprocess.Popen[str], log: Path) -> str:
    """What a failed wait needs to say: is the monitor still running, and what did it log."""
    state = "running" if proc.poll() is None else f"exited {proc.returncode}"
    return f"monitor process {state}; its log:\n{log.read_text()[-4000:]}"


def lagging(s: PairSnapshot) -> PairSnapshot:
    """`s` (led by node1) with the standby node2 32 MiB behind: postgres.standby.node2 fails."""
    row = ReplicationRow("node2", "10.99.0.12", "streaming", "sync", 32 * 2**20, 2.0)
    nodes = tuple(replace(n, postgres=Fact(pg_primary(rows=(row,)))) if n.name == "node1"
                  else n for n in s.nodes)
    return replace(s, nodes=nodes, replication=derive_replication(nodes))


def scrape(port: int) -> dict[str, str]:
    """/metrics as {series: value} (comments dropped)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False).text
    return dict(line.rsplit(" ", 1) for line in text.splitlines()
                if line and not line.startswith("#"))


def test_scripted_polls_over_http(receiver: Receiver) -> None:
    script = [  # (seconds after NOW, snapshot)
        (0, led_by("node1")),
        (10, lagging(led_by("node1"))),  # a blip: 10 s < for_s 30
        (20, led_by("node1")),
        (30, lagging(led_by("node1"))),  # held from 30 …
        (50, lagging(led_by("node1"))),
        (60, lagging(led_by("node1"))),  # … 30 s: fires
        (70, led_by("node1")),  # clear from 70 …
        (100, led_by("node2")),  # failover (and still clear)
        (130, led_by("node2")),  # … 60 s clear: resolves
    ]
    queue = [replace(s, taken_at=NOW + t) for t, s in script]
    collector = SnapshotCollector()
    m = Monitor(lambda: queue.pop(0), WebhookSender([f"http://127.0.0.1:{receiver.port}/hook/T0KEN"]),
                limits=Limits(backup_max_age_s=0), collector=collector,
                policy=AlertPolicy(renotify_s=3600))
    server = MetricsServer(registry_with(collector), "127.0.0.1", 0)
    try:
        seen = []
        for _ in range(len(script)):
            before = len(receiver.bodies)
            r = m.poll_once()
            assert r.delivery.ok, r.delivery.failed
            seen.append([(b["alert"], b["status"]) for b in receiver.bodies[before:]])
            if len(seen) == 6:  # firing: /metrics shows the failing check
                metrics = scrape(server.port)
                assert metrics['hapair_check_ok{check="postgres.standby.node2"}'] == "0.0"
                assert float(metrics['hapair_pg_replication_lag_bytes{standby="node2"}']) == 2**25
        assert seen == [[], [], [], [], [], [("postgres.standby.node2", "firing")], [],
                        [("failover.postgres", "event"), ("failover.redis", "event")],
                        [("postgres.standby.node2", "resolved")]]
        firing, pg_event, _, resolved = receiver.bodies
        assert firing["since"] == iso(NOW + 30) and firing["node"] == "node2"
        assert resolved["since"] == iso(NOW + 30) and resolved["resolved_at"] == iso(NOW + 130)
        assert (pg_event["old_primary"], pg_event["new_primary"]) == ("node1", "node2")
        assert pg_event["since"] == iso(NOW + 100)
        metrics = scrape(server.port)
        assert metrics['hapair_failovers_seen_total{service="postgres"}'] == "1.0"
        assert metrics['hapair_failovers_seen_total{service="redis"}'] == "1.0"
        assert metrics['hapair_pg_primary{node="node2"}'] == "1.0"
        assert metrics["hapair_checks_failing"] == "0.0"
        assert float(metrics["hapair_snapshot_timestamp_seconds"]) == NOW + 130
    finally:
        server.stop()


SCRIPT = """
import sys, time, contextlib
from dataclasses import replace
sys.path.insert(0, {fakes!r})
import click
from monitor_fakes import led_by
from hapair.cli.observe import Source, monitor_cmd

polls = []

@contextlib.contextmanager
def source(_inv):
    def poll():
        polls.append(1)
        # led by node1 for three polls, then by node2 (a failover between two polls)
        s = led_by("node1" if len(polls) <= 3 else "node2")
        return replace(s, taken_at=time.time())
    yield Source(poll, lambda text: text)

root = click.Group("hapair")
root.add_command(monitor_cmd)
root.main(args=sys.argv[1:], prog_name="hapair", obj={{"observe_source": source}})
"""


def test_monitor_process_reports_a_failover(receiver: Receiver, tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tests" / "unit" / "backup"))
    from backup_fakes import write_inventory

    inv = write_inventory(tmp_path)
    yaml = YAML(typ="safe", pure=True)
    data = yaml.load(inv.read_text())
    data["monitor"] = {"renotify_s": 0, "alerts": [{"match": "front_door", "for_s": 5}]}
    with inv.open("w") as fh:
        yaml.dump(data, fh)
    code = SCRIPT.format(fakes=str(REPO / "tests" / "unit" / "monitor"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"),
           "HAPAIR_WEBHOOK": f"http://127.0.0.1:{receiver.port}/hook/T0KEN"}
    # The log goes to a file, not a pipe: an unread pipe that fills would stall the loop.
    log = tmp_path / "monitor.log"
    with log.open("w") as log_fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "monitor", "-i", str(inv), "--listen",
             "127.0.0.1:0", "--interval", "1", "--backup-max-age-hours", "0"],
            stdout=subprocess.DEVNULL, stderr=log_fh, text=True, env=env)
    try:
        report = lambda: process_report(proc, log)  # noqa: E731
        exited = lambda: proc.poll() is not None  # noqa: E731
        wait_for("the monitor serving /metrics", lambda: served_port(log) is not None, 60,
                 context=report, gone=exited)
        port = served_port(log)
        assert port is not None
        wait_for("the failover counted on /metrics", lambda: scrape(port).get(
            'hapair_failovers_seen_total{service="postgres"}') == "1.0", 60, context=report,
            gone=exited)
        wait_for("the failover webhooks", lambda: len(receiver.bodies) >= 2, 30,
                 context=report, gone=exited)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    err = log.read_text()
    assert proc.returncode == 0, err
    assert [(b["alert"], b["status"], b["old_primary"], b["new_primary"])
            for b in receiver.bodies] == [("failover.postgres", "event", "node1", "node2"),
                                              ("failover.redis", "event", "node1", "node2")]
    assert "renotify every 0 s" in err  # the inventory's monitor section was read
    assert "failover seen: postgres: leader changed from node1 to node2" in err
    assert "T0KEN" not in err
