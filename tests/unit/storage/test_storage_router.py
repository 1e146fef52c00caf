import pytest

from hapair.components.storage.router import (
    PROGRAM,
    RouterParams,
    config_test_argv,
    parse_workers,
    reload_argv,
    reload_done,
    render_router_conf,
    router_conf_file,
    router_spec,
    workers_argv,
)
from hapair.components.storage.site import Site
from hapair.errors import UsageError

N1 = Site("node1", "10.99.0.11")
N2 = Site("node2", "10.99.0.12")


def params(**kw: object) -> RouterParams:
    base: dict[str, object] = {"node": "node2", "local": N2, "peer": N1}
    return RouterParams(**{**base, **kw})  # type: ignore[arg-type]


def block(text: str, opener: str) -> list[str]:
    """The stripped lines of the `{ … }` block that starts with `opener`."""
    lines = [ln.strip() for ln in text.splitlines()]
    start = lines.index(opener)
    depth, out = 0, []
    for ln in lines[start:]:
        out.append(ln)
        depth += ln.count("{") - ln.count("}")
        if depth == 0:
            return [x for x in out if x and not x.startswith("#")]
    raise AssertionError(f"unclosed block {opener}")


@pytest.mark.parametrize(
    ("write_to", "server"), [(None, "127.0.0.1:9011"), ("127.0.0.1:47011", "127.0.0.1:47011")]
)
def test_routing_blocks(write_to: str | None, server: str) -> None:
    """Whichever node writes, the config is the same: writes go to the write selector."""
    text = render_router_conf(params(**({"write_to": write_to} if write_to else {})))
    assert block(text, "upstream s3_local {") == [
        "upstream s3_local {", "server 10.99.0.12:9000;", "keepalive 16;", "}"]
    assert block(text, "upstream s3_peer {") == [
        "upstream s3_peer {", "server 10.99.0.11:9000;", "keepalive 16;", "}"]
    assert block(text, "map $request_method $s3_is_read {") == [
        "map $request_method $s3_is_read {", "GET 1;", "HEAD 1;", "default 0;", "}"]
    assert block(text, "location / {") == [
        "location / {",
        "error_page 418 = @write;",
        "if ($s3_is_read = 0) {",
        "return 418;",
        "}",
        "proxy_intercept_errors on;",
        "error_page 404 502 503 504 = @peer;",
        "proxy_pass http://s3_local;",
        "}",
    ]
    assert block(text, "location @peer {") == [
        "location @peer {", "proxy_pass http://s3_peer;", "}"]
    assert block(text, "location @write {") == [
        "location @write {", "proxy_pass http://s3_write;", "}"]
    assert block(text, "upstream s3_write {") == [
        "upstream s3_write {", f"server {server};", "keepalive 16;", "}"]


def test_server_settings() -> None:
    lines = [ln.strip() for ln in render_router_conf(params()).splitlines()]
    for expected in [
        "listen 127.0.0.1:9010;",
        "proxy_set_header Host $http_host;",  # SigV4 signs Host
        'proxy_set_header Connection "";',
        "proxy_http_version 1.1;",
        "proxy_request_buffering off;",
        "proxy_buffering off;",
        "proxy_connect_timeout 2s;",
        "proxy_next_upstream off;",
        "client_max_body_size 0;",
        "underscores_in_headers on;",
        "merge_slashes off;",
        "daemon off;",
        "pid /var/lib/hapair/s3-router/nginx.pid;",
        "error_log stderr warn;",
        "user www-data;",
        "access_log /dev/stdout s3route;",
        "proxy_temp_path /var/lib/hapair/s3-router/proxy;",
    ]:
        assert expected in lines, expected
    no_user = [ln.strip() for ln in render_router_conf(params(worker_user=None)).splitlines()]
    assert not [ln for ln in no_user if ln.startswith("user ")]


def test_argv_and_spec() -> None:
    p = params(prefix="/run/r", config_path="/etc/r/router.conf")
    base = ["/usr/sbin/nginx", "-e", "stderr", "-p", "/run/r", "-c"]
    assert config_test_argv(p) == [*base, "/etc/r/router.conf", "-t", "-q"]
    assert config_test_argv(p, "/etc/r/router.conf.new") == [
        *base, "/etc/r/router.conf.new", "-t", "-q"]
    assert reload_argv(p) == [*base, "/etc/r/router.conf", "-s", "reload"]
    spec = router_spec(p)
    assert (spec.name, spec.command, spec.stop_signal) == (
        PROGRAM, (*base, "/etc/r/router.conf"), "QUIT")
    f = router_conf_file(p)
    assert (f.path, f.mode, f.secret) == ("/etc/r/router.conf", 0o644, False)
    assert p.endpoint == "http://127.0.0.1:9010"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"peer": N2}, "both node2"),
        ({"write_to": "node1:9011"}, "write_to address"),
        ({"write_to": "127.0.0.1"}, "write_to"),
        ({"write_to": "127.0.0.1:0"}, "write_to port"),
        ({"listen": "localhost"}, "listen"),
        ({"port": 70000}, "port"),
        ({"prefix": "relative"}, "prefix"),
        ({"access_log": "/var/log/x combined"}, "format"),
        ({"connect_timeout_s": 0}, "connect_timeout_s"),
    ],
)
def test_params_reject(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        params(**kwargs)


PS_BEFORE = " 2344 nginx: worker process\n"
PS_RELOADING = " 2344 nginx: worker process\n 2349 nginx: worker process\n"
PS_SHUTTING = " 2344 nginx: worker process is shutting down\n 2349 nginx: worker process\n"
PS_AFTER = " 2349 nginx: worker process\n"


def test_parse_workers() -> None:
    assert parse_workers(PS_SHUTTING) == {2344: False, 2349: True}
    assert parse_workers(" 7 nginx: cache manager process\n\n") == {}


@pytest.mark.parametrize(
    ("now", "done"),
    [(PS_BEFORE, False), (PS_RELOADING, False), (PS_SHUTTING, True), (PS_AFTER, True),
     ("", False)],  # no worker at all: nothing serves the new config yet
)
def test_reload_done(now: str, done: bool) -> None:
    assert reload_done(parse_workers(PS_BEFORE), parse_workers(now)) is done


def test_workers_argv() -> None:
    assert workers_argv(123) == ["ps", "-o", "pid=,args=", "--ppid", "123"]
