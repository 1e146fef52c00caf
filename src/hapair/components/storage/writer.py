"""The write selector on each node: HAProxy on 127.0.0.1, behind the nginx router's writes.

Writes must go to the site of the node that takes writes NOW — the PostgreSQL primary — and
follow an unplanned failover without a human. nginx OSS has no active health checks, so the
choice is HAProxy's, made exactly as the PostgreSQL router makes it (components/router): both
sites are servers, each checked with `GET /primary` on its node's Patroni REST port; Patroni
answers 200 only on the leader holding the key, so at most one site is selected. `inter 1s
fall 2 rise 2`: a failover moves writes within ~2 s of Patroni's promotion. While no node
answers (an election), writes fail with 503 instead of landing on a site chosen at random.
`on-marked-down shutdown-sessions` cuts an upload still streaming into the demoted site.

nginx (router.py) keeps what HAProxy cannot do: GET/HEAD served locally with a per-object
fallback to the peer. Its writes go here: app → nginx :9010 → HAProxy :9011 → writing site.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from hapair.components.common import (
    Check,
    RenderedFile,
    render_template,
    require_abs_path,
    require_ip,
    require_name,
    require_port,
    require_positive,
    unique,
)
from hapair.components.router.stats import ServerStat
from hapair.components.storage.site import Site
from hapair.errors import UsageError
from hapair.exec.runtime import ServiceSpec

PROGRAM = "hapair-s3-writer"
DEFAULT_PORT = 9011
PROXY = "s3_write"  # the proxy name `show stat` reports
STATS_SOCKET = "/run/hapair-s3-writer.sock"
FALLBACK_SUFFIX = "-fallback"  # the local site as HAProxy's `backup` server


@dataclass(frozen=True)
class WriteTarget:
    """One site and where its node's Patroni answers GET /primary."""

    site: Site
    patroni_address: str
    patroni_port: int = 8008

    def __post_init__(self) -> None:
        require_ip(self.patroni_address, f"write target {self.site.name} patroni address")
        require_port(self.patroni_port, f"write target {self.site.name} patroni port")

    @property
    def primary_url(self) -> str:
        host = f"[{self.patroni_address}]" if ":" in self.patroni_address else \
            self.patroni_address
        return f"http://{host}:{self.patroni_port}/primary"


@dataclass(frozen=True)
class WriterParams:
    node: str
    targets: tuple[WriteTarget, ...]  # both sites
    listen: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    config_path: str = "/etc/hapair/storage/writer.cfg"
    stats_socket: str = STATS_SOCKET
    haproxy: str = "/usr/sbin/haproxy"
    user: str = "root"  # supervisord user; with `drop_to`, HAProxy drops privileges
    drop_to: str | None = "haproxy"
    io_timeout_s: int = 300  # a large upload streams for a while
    inter_ms: int = 1000
    fall: int = 2
    rise: int = 2

    def __post_init__(self) -> None:
        require_name(self.node, "storage writer node")
        if len(self.targets) != 2:
            raise UsageError("storage writer: both sites are needed")
        unique([t.site.name for t in self.targets], "storage writer sites")
        require_ip(self.listen, "storage writer listen")
        require_port(self.port, "storage writer port")
        for path, what in ((self.config_path, "config_path"),
                           (self.stats_socket, "stats_socket"), (self.haproxy, "haproxy")):
            require_abs_path(path, f"storage writer {what}")
        for value, what in ((self.io_timeout_s, "io_timeout_s"), (self.inter_ms, "inter_ms"),
                            (self.fall, "fall"), (self.rise, "rise")):
            require_positive(value, f"storage writer {what}")

    @property
    def hostport(self) -> str:
        return f"{self.listen}:{self.port}"


def render_writer_conf(p: WriterParams) -> str:
    return render_template("storage/writer.cfg.j2", p=p, proxy=PROXY,
                           fallback_suffix=FALLBACK_SUFFIX)


def writer_conf_file(p: WriterParams) -> RenderedFile:
    # No secret: requests pass through with the app's own signature.
    return RenderedFile(p.config_path, render_writer_conf(p), mode=0o644)


def check_argv(p: WriterParams, config_path: str | None = None) -> list[str]:
    path = config_path or p.config_path
    require_abs_path(path, "storage writer candidate config")
    return [p.haproxy, "-c", "-q", "-f", path]


def reload_argv(master_pid: int) -> list[str]:
    """Master-worker mode: SIGUSR2 re-reads the config; connections in flight finish."""
    return ["kill", "-USR2", str(int(master_pid))]


def writer_spec(p: WriterParams) -> ServiceSpec:
    return ServiceSpec(
        name=PROGRAM,
        command=(p.haproxy, "-W", "-db", "-f", p.config_path),
        user=p.user,
        stop_signal="USR1",  # soft stop: uploads in flight finish
        stop_wait_secs=30,
        priority=290,  # before the nginx router (300) that sends writes here
    )


def config_dir_argv(p: WriterParams) -> list[str]:
    return ["install", "-d", "-m", "0755", posixpath.dirname(p.config_path),
            posixpath.dirname(p.stats_socket)]


def writes_to(stats: Iterable[ServerStat]) -> list[str]:
    """The sites the selector would send a write to now (from `show stat`): exactly one on a
    healthy pair, none during an election (the local fallback is not counted: it takes writes
    only while no site is selected)."""
    return sorted(s.server for s in stats
                  if s.proxy == PROXY and s.up and not s.server.endswith(FALLBACK_SUFFIX))


def writes_follow(node: str, stats: Iterable[ServerStat], primary: str | None) -> Check:
    """The selector on `node` sends writes to the PostgreSQL primary's site, and only there."""
    up = writes_to(stats)
    if primary is not None and up == [primary]:
        return Check.passed(f"writes on {node} go to {primary}'s site")
    return Check.failed(f"writes on {node} go to {', '.join(up) or 'no site'}, expected "
                        f"{primary or 'the primary'}'s site only")
