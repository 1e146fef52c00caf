"""The rendered HTTP load balancers (real nginx and real HAProxy) in front of small HTTP
servers on loopback: the route table, and the retry rule — a GET that a node drops is retried
on the other node, a POST is never replayed. Node A answers its health paths but drops every
other request after reading it (a node dying mid-request); node B answers everything.
Ports 18550-18559."""

from __future__ import annotations

import http.client
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hapair.components.http_lb import (
    HaproxyLbParams,
    HttpNode,
    NginxLbParams,
    RouteTable,
    haproxy_lb_argv,
    nginx_argv,
    render_haproxy_lb_config,
    render_nginx_config,
)
from hapair.components.router import check_all_up, parse_show_stat, show_stat_argv

ROUTES = RouteTable(("/health/", "/api/articles/"), ("/api/health", "/"))
HEALTH = ("/health/", "/api/health")
NODES = (HttpNode("node1", "127.0.0.1", 18552, 18554), HttpNode("node2", "127.0.0.1", 18553, 18555))


class App(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, name: str, drops: bool) -> None:
        self.name, self.drops, self.seen = name, drops, Counter[tuple[str, str]]()
        super().__init__(("127.0.0.1", port), Handler)


class Handler(BaseHTTPRequestHandler):
    server: App

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path not in HEALTH:
            self.server.seen[(self.command, self.path)] += 1
        if self.server.drops and self.path not in HEALTH:
            self.close_connection = True  # read the request, then die without an answer
            return
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _handle

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def apps() -> Iterator[dict[str, App]]:
    servers = {"a": App(18552, "backend-a", drops=True), "b": App(18553, "backend-b", False),
               "fa": App(18554, "frontend-a", False), "fb": App(18555, "frontend-b", False)}
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers.values()]
    for t in threads:
        t.start()
    yield servers
    for s in servers.values():
        s.shutdown()
        s.server_close()


def request(port: int, method: str, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, body=b"x=1" if method == "POST" else None)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def start_nginx(procs, workdir: Path, write_file) -> tuple[Callable[[], None], int]:
    params = NginxLbParams("node1", NODES, ROUTES, listen="127.0.0.1", port=18550,
                           config_path=f"{workdir}/nginx.conf", pid_path=f"{workdir}/nginx.pid",
                           temp_dir=str(workdir), user=None, workers="1")
    write_file(render_nginx_config(params))
    return lambda: procs.spawn(nginx_argv(params) + ["-p", str(workdir)], "nginx"), 18550


def start_haproxy(procs, workdir: Path, write_file) -> tuple[Callable[[], None], int]:
    params = HaproxyLbParams("node1", NODES, ROUTES, listen="127.0.0.1", port=18551,
                             config_path=f"{workdir}/lb.cfg", stats_socket=f"{workdir}/lb.sock",
                             user=None, group=None, inter_ms=200, fastinter_ms=100)
    write_file(render_haproxy_lb_config(params))
    return lambda: procs.spawn(haproxy_lb_argv(params), "haproxy-lb"), 18551


def _stats_all_up(socket_path: str) -> bool:
    out = subprocess.run(show_stat_argv(socket_path), capture_output=True, text=True,
                         timeout=10, check=True).stdout
    stats = parse_show_stat(out)
    return check_all_up(stats, "hapair_backend").ok and check_all_up(stats, "hapair_frontend").ok


@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
def test_routes_and_idempotent_only_retries(kind: str, apps: dict[str, App], procs,
                                            workdir: Path, wait: Callable[..., object],
                                            write_file: Callable[..., Path]) -> None:
    if shutil.which(kind) is None:
        pytest.skip(f"{kind} not installed")
    starter = start_nginx if kind == "nginx" else start_haproxy
    start, port = starter(procs, workdir, write_file)

    def fresh() -> None:
        # a fresh balancer: round-robin starts at node1 (A, the one that drops requests)
        procs.stop_all()
        procs.started.clear()
        start()
        wait(lambda: request(port, "GET", "/api/health")[0] == 200, 15, f"{kind} up")
        if kind == "haproxy":
            wait(lambda: _stats_all_up(f"{workdir}/lb.sock"), 15, "all servers up")

    fresh()
    assert request(port, "GET", "/api/health")[1].startswith("frontend-")
    assert request(port, "GET", "/")[1].startswith("frontend-")

    fresh()
    status, _ = request(port, "POST", "/api/articles/")
    a_posts = apps["a"].seen[("POST", "/api/articles/")]
    b_posts = apps["b"].seen[("POST", "/api/articles/")]
    assert a_posts == 1, "the first request goes to node1"
    assert b_posts == 0, "a POST already sent must never be replayed on the other node"
    assert status == 502

    fresh()
    status, body = request(port, "GET", "/api/articles/")
    assert (status, body) == (200, "backend-b")
    assert apps["a"].seen[("GET", "/api/articles/")] == 1  # tried on A, dropped, retried on B
