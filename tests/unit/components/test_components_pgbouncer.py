from pathlib import Path

import pytest

from hapair.components.common import Plain
from hapair.components.pgbouncer import (
    PgBouncerParams,
    PgBouncerUser,
    admin_psql_argv,
    check_paused,
    check_resumed,
    parse_show_databases,
    parse_show_pools,
    pause_sql,
    pgbouncer_argv,
    reconnect_sql,
    render_pgbouncer_config,
    render_userlist,
    resume_sql,
)
from hapair.errors import UsageError

DATA = Path(__file__).parent / "data" / "pgbouncer"
USERS = (PgBouncerUser("cms", Plain('pa"ss')),
         PgBouncerUser("hapair", Plain("SCRAM-SHA-256$4096:x")))


def params(**kw: object) -> PgBouncerParams:
    base: dict[str, object] = {"node_name": "node1", "databases": ("cms",), "users": USERS,
                               "admin_user": "hapair"}
    return PgBouncerParams(**{**base, **kw})  # type: ignore[arg-type]


def kv(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(";"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def test_config_points_at_the_router() -> None:
    f = render_pgbouncer_config(params())
    assert (f.path, f.mode, f.owner, f.secret) == (
        "/etc/pgbouncer/pgbouncer.ini", 0o640, "postgres", False)
    assert "cms = host=127.0.0.1 port=5433 dbname=cms" in f.content
    settings = kv(f.content.split("[pgbouncer]")[1])
    assert settings["listen_addr"] == "127.0.0.1" and settings["listen_port"] == "6432"
    assert settings["auth_type"] == "scram-sha-256"
    assert settings["auth_file"] == "/etc/pgbouncer/userlist.txt"
    assert settings["admin_users"] == "hapair"
    assert settings["pool_mode"] == "transaction"
    assert settings["unix_socket_dir"] == ""


def test_userlist_is_secret_and_quoted() -> None:
    f = render_userlist(params())
    assert (f.mode, f.secret) == (0o600, True)
    assert f.content == '"cms" "pa""ss"\n"hapair" "SCRAM-SHA-256$4096:x"\n'


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"admin_user": "root"}, "must be in users"), ({"databases": ()}, "at least one"),
     ({"pool_mode": "statement"}, "pool_mode"), ({"databases": ("a b",)}, "database")],
)
def test_invalid(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        params(**kwargs)


def test_admin_builders() -> None:
    assert (pause_sql("cms"), resume_sql("cms"), reconnect_sql("cms")) == (
        "PAUSE cms", "RESUME cms", "RECONNECT cms")
    with pytest.raises(UsageError):
        pause_sql("cms; SHUTDOWN")
    assert admin_psql_argv("SHOW POOLS", "hapair") == [
        "psql", "-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", "6432",
        "-U", "hapair", "-d", "pgbouncer", "-c", "SHOW POOLS"]
    assert pgbouncer_argv(params()) == ["pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]


def test_samples_paused_and_resumed() -> None:
    paused = parse_show_databases((DATA / "show_databases_paused.csv").read_text())
    assert [(d.name, d.port, d.paused) for d in paused] == [
        ("cms", 18531, True), ("pgbouncer", 18540, False)]
    idle = parse_show_pools((DATA / "show_pools_idle.csv").read_text())
    assert check_paused(paused, idle, "cms").reason == "pgbouncer cms paused; 0 client(s) waiting"
    assert not check_resumed(paused, "cms").ok
    running = parse_show_databases((DATA / "show_databases_running.csv").read_text())
    assert check_resumed(running, "cms").ok
    assert check_paused(running, idle, "cms").reason == "pgbouncer database cms is not paused"
    assert not check_paused(running, idle, "other").ok


def test_busy_pool_is_not_drained() -> None:
    busy = parse_show_pools((DATA / "show_pools_busy.csv").read_text())
    cms = busy[0]
    assert (cms.cl_active, cms.cl_waiting, cms.sv_active, cms.sv_idle, cms.pool_mode) == (
        4, 3, 2, 1, "transaction")
    paused = parse_show_databases((DATA / "show_databases_paused.csv").read_text())
    assert check_paused(paused, busy, "cms").reason == (
        "pgbouncer cms paused but 2 server connection(s) still busy")
