"""HTTP load balancer on each data node, after the upgrade: HAProxy (default) or nginx.

Recommendation: HAProxy, because
- it checks each app's readiness endpoint ACTIVELY (GET /health/, /api/health every 2 s): a
  dead or unready node leaves the pool before a user request hits it. Open-source nginx only
  has passive checks: a real request must fail first, and after every fail_timeout one real
  request probes the dead node again (latency, and a 502 for a non-idempotent request whose
  connection was accepted and then dropped);
- its runtime API (stats socket) drains a node (`set server … state drain`) before an app
  restart: zero failed requests for rolling restarts;
- L7 retries are limited to idempotent methods (`http-request disable-l7-retry`), like nginx's
  proxy_next_upstream without non_idempotent;
- the local router is HAProxy already: one package, one stats parser.
nginx remains available for sites that want it (TLS with certbot, static files there).

Listening: by default both variants bind 0.0.0.0:<port>, which takes the VIP's traffic on
whichever node holds it with no reload. Replacing a running nginx that listens on one
specific address is different: Linux refuses the wildcard bind while that listener exists, so
the upgrade lists [VIP, node address] instead and sets net.ipv4.ip_nonlocal_bind=1 (see
NginxLbParams). The LB also answers on the node's own address, which the checks use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hapair.components.common import (
    Check,
    RenderedFile,
    curl_get_argv,
    render_template,
    require_abs_path,
    require_ip,
    require_name,
    require_port,
    require_positive,
    require_token,
    unique,
)
from hapair.components.http_lb.routes import RouteTable
from hapair.errors import UsageError

LbKind = Literal["haproxy", "nginx"]
DEFAULT_KIND: LbKind = "haproxy"


@dataclass(frozen=True)
class HttpNode:
    name: str
    address: str
    backend_port: int = 8000
    frontend_port: int = 3000

    def __post_init__(self) -> None:
        require_name(self.name, "http_lb node name")
        require_ip(self.address, f"http_lb node {self.name} address")
        require_port(self.backend_port, f"http_lb node {self.name} backend_port")
        require_port(self.frontend_port, f"http_lb node {self.name} frontend_port")

    def port(self, target: str) -> int:
        return self.backend_port if target == "backend" else self.frontend_port


def _common_checks(node_name: str, nodes: tuple[HttpNode, ...], listen: str | tuple[str, ...],
                   port: int) -> None:
    require_name(node_name, "http_lb node_name")
    if not nodes:
        raise UsageError("http_lb nodes: at least one")
    unique([n.name for n in nodes], "http_lb node names")
    for address in (listen,) if isinstance(listen, str) else listen:
        require_ip(address, "http_lb listen")
    require_port(port, "http_lb port")


@dataclass(frozen=True)
class NginxLbParams:
    """`listen` may list several addresses. Linux refuses a wildcard bind while a specific
    address holds the port, so an nginx already listening on the service address is reloaded
    onto [VIP, node address] (with net.ipv4.ip_nonlocal_bind=1), not onto 0.0.0.0."""

    node_name: str
    nodes: tuple[HttpNode, ...]
    routes: RouteTable
    listen: str | tuple[str, ...] = "0.0.0.0"
    port: int = 80
    server_name: str = "_"
    config_path: str = "/etc/nginx/nginx.conf"
    pid_path: str = "/run/nginx.pid"
    temp_dir: str = "/var/lib/nginx"
    error_log: str = "stderr"
    access_log: str = "off"
    user: str | None = "www-data"
    workers: str = "auto"
    max_fails: int = 1
    fail_timeout_s: int = 2
    connect_timeout_s: int = 1  # a dead host is skipped after 1 s, not 60
    read_timeout_s: int = 60
    max_body: str = "50m"  # media uploads

    def __post_init__(self) -> None:
        _common_checks(self.node_name, self.nodes, self.listen, self.port)
        require_token(self.server_name.replace(" ", ","), "http_lb server_name")
        for path, what in [(self.config_path, "config_path"), (self.pid_path, "pid_path"),
                           (self.temp_dir, "temp_dir")]:
            require_abs_path(path, f"http_lb {what}")
        for text, what in [(self.error_log, "error_log"), (self.access_log, "access_log"),
                           (self.max_body, "max_body"), (self.workers, "workers")]:
            require_token(text, f"http_lb {what}")
        if self.user is not None:
            require_name(self.user, "http_lb user")
        for value, what in [(self.max_fails, "max_fails"), (self.fail_timeout_s, "fail_timeout_s"),
                            (self.connect_timeout_s, "connect_timeout_s"),
                            (self.read_timeout_s, "read_timeout_s")]:
            require_positive(value, f"http_lb {what}")


def render_nginx_config(p: NginxLbParams) -> RenderedFile:
    text = render_template(
        "http_lb/nginx.conf.j2",
        node=p.node_name, listen=(p.listen,) if isinstance(p.listen, str) else p.listen,
        port=p.port, user=p.user, pid_path=p.pid_path, workers=p.workers,
        error_log=p.error_log, access_log=p.access_log, max_body=p.max_body,
        temp_dir=p.temp_dir, nodes=p.nodes, max_fails=p.max_fails,
        fail_timeout_s=p.fail_timeout_s, server_name=p.server_name,
        connect_timeout_s=p.connect_timeout_s, read_timeout_s=p.read_timeout_s,
        routes=p.routes.routes(), default=p.routes.default,
    )
    return RenderedFile(p.config_path, text, mode=0o644)


def nginx_argv(p: NginxLbParams, binary: str = "nginx") -> list[str]:
    """Foreground under the supervisor; `nginx -s reload` (or SIGHUP) reloads gracefully."""
    return [binary, "-c", p.config_path, "-g", "daemon off;"]


def nginx_test_argv(config_path: str, prefix: str | None = None,
                    binary: str = "nginx") -> list[str]:
    argv = [binary, "-t", "-q", "-c", config_path, "-e", "stderr"]
    return argv + (["-p", prefix] if prefix else [])


@dataclass(frozen=True)
class HealthTarget:
    name: str  # "backend" | "frontend"
    health: str


@dataclass(frozen=True)
class HaproxyLbParams:
    node_name: str
    nodes: tuple[HttpNode, ...]
    routes: RouteTable
    backend_health: str = "/health/"
    frontend_health: str = "/api/health"
    health_host: str = "localhost"  # Host header of the checks: must be in ALLOWED_HOSTS
    listen: str = "0.0.0.0"
    port: int = 80
    config_path: str = "/etc/haproxy/hapair-http.cfg"
    stats_socket: str = "/run/haproxy/hapair-http.sock"
    user: str | None = "haproxy"
    group: str | None = "haproxy"
    maxconn: int = 4096
    connect_timeout_ms: int = 1000
    read_timeout_s: int = 60
    inter_ms: int = 2000
    fastinter_ms: int = 500

    def __post_init__(self) -> None:
        _common_checks(self.node_name, self.nodes, self.listen, self.port)
        require_abs_path(self.backend_health, "http_lb backend_health")
        require_abs_path(self.frontend_health, "http_lb frontend_health")
        require_token(self.health_host, "http_lb health_host")
        require_abs_path(self.config_path, "http_lb config_path")
        require_abs_path(self.stats_socket, "http_lb stats_socket")
        if (self.user is None) != (self.group is None):
            raise UsageError("http_lb user and group go together")
        for value, what in [(self.maxconn, "maxconn"),
                            (self.connect_timeout_ms, "connect_timeout_ms"),
                            (self.read_timeout_s, "read_timeout_s"), (self.inter_ms, "inter_ms"),
                            (self.fastinter_ms, "fastinter_ms")]:
            require_positive(value, f"http_lb {what}")


def render_haproxy_lb_config(p: HaproxyLbParams) -> RenderedFile:
    text = render_template(
        "http_lb/haproxy.cfg.j2",
        node=p.node_name, listen=p.listen, port=p.port, maxconn=p.maxconn, user=p.user,
        group=p.group, stats_socket=p.stats_socket, connect_timeout_ms=p.connect_timeout_ms,
        read_timeout_s=p.read_timeout_s, inter_ms=p.inter_ms, fastinter_ms=p.fastinter_ms,
        routes=p.routes.routes(), default=p.routes.default, nodes=p.nodes,
        health_host=p.health_host,
        backends=[HealthTarget("backend", p.backend_health),
                  HealthTarget("frontend", p.frontend_health)],
    )
    return RenderedFile(p.config_path, text, mode=0o644)


def haproxy_lb_argv(p: HaproxyLbParams, binary: str = "haproxy") -> list[str]:
    return [binary, "-W", "-db", "-f", p.config_path]


HTTP_PROXIES = ("hapair_backend", "hapair_frontend")  # the names `show stat` reports


def lb_probe_argv(port: int, path: str, host_header: str, address: str = "127.0.0.1",
                  timeout_s: int = 3) -> list[str]:
    """GET a path THROUGH the load balancer on a node (e.g. the backend's /health/)."""
    require_port(port, "http_lb probe port")
    require_abs_path(path, "http_lb probe path")
    return curl_get_argv(f"http://{require_ip(address, 'address')}:{port}{path}", timeout_s,
                         host_header)


def check_lb_answer(status: int, where: str, path: str) -> Check:
    """The answer is the app's own health through the LB: 200 is healthy, anything else is
    reported with its meaning (502/503: no healthy upstream; 0: the LB did not answer)."""
    if status == 200:
        return Check.passed(f"{where}: {path} answered 200 through the load balancer")
    meaning = {0: "nothing answered", 502: "no upstream answered", 503: "no upstream available",
               504: "upstream timed out"}.get(status, "unexpected status")
    return Check.failed(f"{where}: {path} answered {status} through the load balancer ({meaning})")
