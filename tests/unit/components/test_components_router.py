from pathlib import Path

import pytest

from hapair.components.common import Endpoint, Plain
from hapair.components.router import (
    RouterBackend,
    RouterParams,
    RouterS3,
    RouterSentinel,
    check_all_up,
    check_config_argv,
    check_single_up,
    parse_runtime_reply,
    parse_show_stat,
    redis_proxies,
    render_router_config,
    resp_bulk_pair_hex,
    resp_command_hex,
    route_commands,
    router_argv,
    servers_up,
    set_server_health,
    set_server_state,
    show_stat_argv,
    stats_commands_argv,
)
from hapair.errors import StepFailed, UsageError

DATA = Path(__file__).parent / "data" / "haproxy"
BACKENDS = (RouterBackend("node1", "10.99.0.11"), RouterBackend("node2", "10.99.0.12"))
SENTINEL = RouterSentinel(Endpoint("10.99.0.11", 26379), "cms-cache", Plain("sent-pw"))


def params(**kw: object) -> RouterParams:
    base: dict[str, object] = {"node_name": "node1", "backends": BACKENDS,
                               "redis_password": Plain("redis-pw"), "sentinel": SENTINEL}
    return RouterParams(**{**base, **kw})  # type: ignore[arg-type]


def stripped(text: str) -> list[str]:
    stripped_lines = (ln.strip() for ln in text.splitlines())
    return [ln for ln in stripped_lines if ln and not ln.startswith("#")]


def test_resp_encoding() -> None:
    assert bytes.fromhex(resp_command_hex("AUTH", "p w")) == b"*2\r\n$4\r\nAUTH\r\n$3\r\np w\r\n"
    assert bytes.fromhex(resp_bulk_pair_hex("10.99.0.11", "6379")) == (
        b"$10\r\n10.99.0.11\r\n$4\r\n6379\r\n")


def test_postgres_section() -> None:
    f = render_router_config(params())
    assert (f.path, f.mode, f.secret) == ("/etc/haproxy/hapair-router.cfg", 0o600, True)
    lines = stripped(f.content)
    start = lines.index("listen postgres")
    assert lines[start:start + 8] == [
        "listen postgres",
        "bind 127.0.0.1:5433",
        "balance first",
        "option httpchk",
        "http-check send meth GET uri /primary",
        "http-check expect status 200",
        "server node1 10.99.0.11:5432 check port 8008",
        "server node2 10.99.0.12:5432 check port 8008",
    ]
    assert ("default-server inter 1000ms fastinter 500ms downinter 1000ms fall 2 rise 2 "
            "on-marked-down shutdown-sessions") in lines
    assert "stats socket /run/haproxy/hapair-router.sock mode 600 level admin" in lines
    assert "user haproxy" in lines and "group haproxy" in lines


def test_redis_section_checks_role_and_sentinel() -> None:
    text = render_router_config(params()).content
    assert "redis-pw" not in text and "sent-pw" not in text  # hex only, never plain
    lines = stripped(text)
    front = lines.index("frontend redis")
    assert lines[front:front + 4] == [
        "frontend redis",
        "bind 127.0.0.1:6380",
        "use_backend redis_node1 if { nbsrv(redis_node1) gt 0 }",
        "default_backend redis_node2",
    ]
    be = lines.index("backend redis_node2")
    assert lines[be:be + 17] == [
        "backend redis_node2",
        "option tcp-check",
        "tcp-check connect",
        f"tcp-check send-binary {resp_command_hex('AUTH', 'redis-pw')}",
        "tcp-check expect string +OK",
        "tcp-check send PING\\r\\n",
        "tcp-check expect string +PONG",
        "tcp-check send info\\ replication\\r\\n",
        "tcp-check expect string role:master",
        "tcp-check send QUIT\\r\\n",
        "tcp-check expect string +OK",
        "tcp-check connect addr 10.99.0.11 port 26379",
        f"tcp-check send-binary {resp_command_hex('AUTH', 'sent-pw')}",
        "tcp-check expect string +OK",
        "tcp-check send-binary "
        + resp_command_hex("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "cms-cache"),
        f"tcp-check expect binary {resp_bulk_pair_hex('10.99.0.12', '6379')}",
        "server node2 10.99.0.12:6379 check",
    ]
    assert redis_proxies(params()) == ("redis_node1", "redis_node2")


def test_without_sentinel_and_with_acl_user_and_s3() -> None:
    s3 = RouterS3(9002, (("node1", Endpoint("10.99.0.11", 9000)),
                         ("node2", Endpoint("10.99.0.12", 9000))))
    text = render_router_config(params(sentinel=None, redis_username="app", s3=s3,
                                       listen_addresses=("127.0.0.1", "10.99.0.11"))).content
    assert "tcp-check connect addr" not in text
    assert f"tcp-check send-binary {resp_command_hex('AUTH', 'app', 'redis-pw')}" in text
    lines = stripped(text)
    assert "bind 10.99.0.11:5433" in lines and "bind 10.99.0.11:6380" in lines
    assert "server node1 10.99.0.11:9000 check" in lines
    assert "server node2 10.99.0.12:9000 check backup" in lines


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"backends": BACKENDS[:1]}, "both data nodes"), ({"pg_port": 6380}, "appears twice"),
     ({"listen_addresses": ("localhost",)}, "not an IP"), ({"user": None}, "go together"),
     ({"backends": (BACKENDS[0], BACKENDS[0])}, "appears twice")],
)
def test_invalid(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        params(**kwargs)


def test_argv_builders() -> None:
    assert router_argv(params()) == ["haproxy", "-W", "-db", "-f", "/etc/haproxy/hapair-router.cfg"]
    assert check_config_argv("/x.cfg") == ["haproxy", "-c", "-f", "/x.cfg"]
    argv = show_stat_argv("/run/haproxy/r.sock")
    assert argv[0] == "python3" and argv[-2:] == ["/run/haproxy/r.sock", "show stat"]
    assert set_server_state("redis_node1", "node1", "drain") == (
        "set server redis_node1/node1 state drain")
    with pytest.raises(StepFailed):
        set_server_state("p", "s", "gone")


def test_show_stat_sample_pg_down_redis_one_up() -> None:
    stats = parse_show_stat((DATA / "router_pg_down_redis_one_up.csv").read_text())
    assert [(s.proxy, s.server, s.status, s.check_status) for s in stats] == [
        ("postgres", "node1", "DOWN", "L4CON"),
        ("postgres", "node2", "DOWN", "L4CON"),
        ("redis", "node1", "UP", "L7OK"),
        ("redis", "node2", "DOWN", "L7TOUT"),
    ]
    pg = check_single_up(stats, "postgres")
    assert not pg.ok and pg.reason.startswith("router postgres: no backend up: node1 DOWN (L4CON")
    assert check_single_up(stats, "redis").reason == "router redis -> node1"
    assert servers_up(stats, "redis") == ["node1"]
    assert "step 7 of tcp-check" in stats[3].last_check


def test_show_stat_sample_two_masters_is_reported() -> None:
    # captured 8 s after SENTINEL FAILOVER with a role-only check: both said role:master
    stats = parse_show_stat((DATA / "router_two_redis_masters.csv").read_text())
    check = check_single_up(stats, "redis")
    assert not check.ok and "2 backends up at once" in check.reason
    assert not check_all_up(stats, "postgres").ok
    assert check_all_up(stats, "redis").ok


def test_show_stat_per_node_proxies_and_garbage() -> None:
    csv = ("# pxname,svname,scur,status,check_status,last_chk\n"
           "redis_node1,node1,0,DOWN,L7RSP,TCPCHK did not match content 'role:master'\n"
           "redis_node1,BACKEND,0,DOWN,,\n"
           "redis_node2,node2,3,UP,L7OK,(tcp-check)\n")
    stats = parse_show_stat(csv)
    assert check_single_up(stats, ("redis_node1", "redis_node2"), "redis").reason == (
        "router redis -> node2")
    assert stats[1].current_sessions == 3
    with pytest.raises(StepFailed, match="header"):
        parse_show_stat("Unknown command")


# -- forcing a router over (switchover): runtime commands and their answer --------------------


def test_route_commands_down_first_then_up_then_read() -> None:
    assert route_commands("postgres", "node1", "postgres", "node2") == [
        "set server postgres/node1 health down",
        "set server postgres/node2 health up",
        "show stat",
    ]
    argv = stats_commands_argv("/run/haproxy/r.sock", route_commands(
        "redis_node2", "node2", "redis_node1", "node1"))
    assert argv[0] == "python3" and argv[-2] == "/run/haproxy/r.sock"
    assert argv[-1] == ("set server redis_node2/node2 health down; "
                        "set server redis_node1/node1 health up; show stat")


@pytest.mark.parametrize(("call", "message"), [
    (lambda: set_server_health("postgres", "node1", "stopping"), "not up|down"),
    (lambda: set_server_health("postgres", "node1; shutdown", "up"), "server"),
    (lambda: stats_commands_argv("/r.sock", []), "no HAProxy runtime command"),
    (lambda: stats_commands_argv("/r.sock", ["show stat; shutdown sessions"]), "one HAProxy"),
    (lambda: stats_commands_argv("relative.sock", ["show stat"]), "stats socket"),
])
def test_runtime_builders_refuse(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises((StepFailed, UsageError), match=message):
        call()


def test_runtime_reply_forced_over() -> None:
    # captured from HAProxy 2.6.12 answering route_commands("postgres", "node1", …, "node2")
    errors, stats = parse_runtime_reply((DATA / "router_route_reply_ok.txt").read_text())
    assert errors == []
    assert servers_up(stats, "postgres") == ["node2"]


def test_runtime_reply_with_an_error_names_it() -> None:
    text = (DATA / "router_route_reply_no_such_server.txt").read_text()
    errors, stats = parse_runtime_reply(text)
    assert errors == ["No such server."]
    assert [s.server for s in stats] == ["node1", "node2"]


@pytest.mark.parametrize(("text", "errors", "servers"), [
    ("", [], 0),
    ("Permission denied\n\n", ["Permission denied"], 0),
    ("\n\n# pxname,svname,status\npostgres,node2,UP\n\n", [], 1),
])
def test_runtime_reply_shapes(text: str, errors: list[str], servers: int) -> None:
    got_errors, stats = parse_runtime_reply(text)
    assert got_errors == errors and len(stats) == servers
