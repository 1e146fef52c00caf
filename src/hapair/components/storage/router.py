"""The object-storage router on each node: nginx on 127.0.0.1, the app's S3 endpoint.

Writes (every method but GET/HEAD) go to the write selector (writer.py: HAProxy, which sends
them to the site of the node Patroni names primary); reads go to the local site and fall back
to the peer when the local site answers 404 (an object not copied yet) or does not answer
(502/503/504). HAProxy, the router for PostgreSQL and Redis, cannot do this
per-object fallback (it picks a server before the answer exists); nginx can, with
`proxy_intercept_errors` and `error_page … = @peer`. The fallback is for reads only: a
write is never replayed on another site, and interception is off for writes (a 404 of a
write — NoSuchBucket — reaches the app as it is).

Signing: SigV4 covers the Host header, so the router forwards the client's own Host
(`proxy_set_header Host $http_host`) and both sites share one key pair: whichever site gets
the request verifies the signature the app computed for the router's address.

Known edge: a read of an object missing locally while the peer is unreachable answers 502
(the router cannot tell "nowhere" from "only on the peer"); the CMS turns that into 503.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from hapair.components.common import (
    RenderedFile,
    render_template,
    require_abs_path,
    require_ip,
    require_name,
    require_port,
    require_positive,
    require_token,
)
from hapair.components.storage.site import Site
from hapair.errors import UsageError
from hapair.exec.runtime import ServiceSpec

PROGRAM = "hapair-s3-router"
DEFAULT_PORT = 9010  # the app's endpoint; the site keeps 9000 (proposed inventory field)


@dataclass(frozen=True)
class RouterParams:
    node: str
    local: Site
    peer: Site
    write_to: str = "127.0.0.1:9011"  # the write selector (writer.py), host:port
    listen: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    prefix: str = "/var/lib/hapair/s3-router"  # pid file and temp paths
    config_path: str = "/etc/hapair/storage/router.conf"
    nginx: str = "/usr/sbin/nginx"
    user: str = "root"  # supervisord user; as root, workers drop to worker_user
    worker_user: str | None = "www-data"
    access_log: str = "/dev/stdout s3route"  # supervisord keeps and rotates it
    worker_connections: int = 1024
    connect_timeout_s: int = 2  # a partitioned peer costs a read at most this much
    io_timeout_s: int = 120

    def __post_init__(self) -> None:
        require_name(self.node, "storage router node")
        if self.local.name == self.peer.name:
            raise UsageError(f"storage router: local and peer are both {self.local.name}")
        host, _, port = self.write_to.rpartition(":")
        require_ip(host.strip("[]"), "storage router write_to address")
        require_port(int(port) if port.isdigit() else -1, "storage router write_to port")
        require_ip(self.listen, "storage router listen")
        require_port(self.port, "storage router port")
        for path, what in ((self.prefix, "prefix"), (self.config_path, "config_path"),
                           (self.nginx, "nginx")):
            require_abs_path(path, f"storage router {what}")
        require_token(self.user, "storage router user")
        if self.worker_user is not None:
            require_token(self.worker_user, "storage router worker_user")
        if self.access_log != "off":
            path, _, fmt = self.access_log.partition(" ")
            require_abs_path(path, "storage router access_log")
            if fmt and fmt != "s3route":
                raise UsageError(f"storage router access_log format {fmt!r} is not s3route")
        for value, what in ((self.worker_connections, "worker_connections"),
                            (self.connect_timeout_s, "connect_timeout_s"),
                            (self.io_timeout_s, "io_timeout_s")):
            require_positive(value, f"storage router {what}")

    @property
    def pid_path(self) -> str:
        return posixpath.join(self.prefix, "nginx.pid")

    @property
    def endpoint(self) -> str:
        """What the app's MINIO_ENDPOINT becomes on this node."""
        return f"http://{self.listen}:{self.port}"


def render_router_conf(p: RouterParams) -> str:
    return render_template(
        "storage/router.conf.j2",
        node=p.node,
        local=p.local,
        peer=p.peer,
        write_to=p.write_to,
        listen=p.listen,
        port=p.port,
        prefix=p.prefix,
        pid_path=p.pid_path,
        worker_user=p.worker_user,
        access_log=p.access_log,
        worker_connections=p.worker_connections,
        connect_timeout_s=p.connect_timeout_s,
        io_timeout_s=p.io_timeout_s,
    )


def router_conf_file(p: RouterParams) -> RenderedFile:
    return RenderedFile(p.config_path, render_router_conf(p), mode=0o644)


def nginx_argv(p: RouterParams, *extra: str) -> list[str]:
    # -e stderr: never touch the compiled-in error log, even before the config is read.
    return [p.nginx, "-e", "stderr", "-p", p.prefix, "-c", p.config_path, *extra]


def config_test_argv(p: RouterParams, config_path: str | None = None) -> list[str]:
    """`nginx -t` of the installed config, or of a candidate file before it replaces it."""
    argv = nginx_argv(p, "-t", "-q")
    if config_path:
        require_abs_path(config_path, "storage router candidate config")
        argv[argv.index(p.config_path)] = config_path
    return argv


def reload_argv(p: RouterParams) -> list[str]:
    """Graceful: new workers take the new config, old ones finish their requests. The signal
    returns at once: wait for reload_done() before counting on the new config."""
    return nginx_argv(p, "-s", "reload")


def workers_argv(master_pid: int) -> list[str]:
    return ["ps", "-o", "pid=,args=", "--ppid", str(int(master_pid))]


def parse_workers(ps_output: str) -> dict[int, bool]:
    """`ps -o pid=,args= --ppid MASTER` -> {worker pid: still accepting connections}.

    nginx retitles a worker it told to stop "nginx: worker process is shutting down": from
    then on it takes no new connection, only finishes its requests."""
    workers: dict[int, bool] = {}
    for line in ps_output.splitlines():
        pid, _, args = line.strip().partition(" ")
        if pid.isdigit() and "worker process" in args:
            workers[int(pid)] = "is shutting down" not in args
    return workers


def reload_done(before: dict[int, bool], now: dict[int, bool]) -> bool:
    """The new config serves every new connection: no worker that accepted before the reload
    still accepts, and a new worker does."""
    old = {pid for pid, accepting in before.items() if accepting}
    return not any(now.get(pid) for pid in old) and any(
        accepting and pid not in before for pid, accepting in now.items())


def prefix_dirs_argv(p: RouterParams) -> list[str]:
    return ["install", "-d", "-m", "0755", p.prefix, posixpath.dirname(p.config_path)]


def router_spec(p: RouterParams) -> ServiceSpec:
    return ServiceSpec(
        name=PROGRAM,
        command=tuple(nginx_argv(p)),
        user=p.user,
        stop_signal="QUIT",  # graceful: requests in flight finish
        stop_wait_secs=30,
        priority=300,
    )
