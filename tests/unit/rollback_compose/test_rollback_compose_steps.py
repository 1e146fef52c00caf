"""The compose rollback's steps, against the exact commands they run on each host: the
hand-backs (Redis, then PostgreSQL: a one-off container reads the service's settings, Patroni
stops, the data directory gets its config back, the user's service starts the same volume),
the compose file and the app, hapair's project down, the front door with a VIP; passwords only
on stdin; only the tools a Docker host has; checks that still hold once later steps ran."""

from __future__ import annotations

from pathlib import Path

import pytest
from plan_commands import DOCKER_HOST_TOOLS, run_every_step
from rollback_compose_fakes import (
    EDITED,
    FILE,
    ORIGINAL,
    PGDATA,
    SECRETS,
    app,
    completed_upgrade,
    context,
    hosts,
    members,
    pair,
    ps,
)

import hapair.workflows.rollback_compose.preflight as preflight
import hapair.workflows.rollback_compose.steps_front as steps_front
import hapair.workflows.rollback_compose.steps_pg as steps_pg
import hapair.workflows.rollback_compose.steps_redis as steps_redis
from hapair.errors import StepFailed
from hapair.exec.recording import RecordingTransport, Reply
from hapair.plan.step import Plan, StepContext
from hapair.workflows.context import WorkflowContext
from hapair.workflows.rollback_compose.model import (
    HANDBACK_SCRIPT,
    PG_ENV_SCRIPT,
    STOCK_PG_IDENT,
    PgEnv,
    stock_pg_hba,
)
from hapair.workflows.rollback_compose.plan import build_compose_rollback_plan
from hapair.workflows.rollback_compose.preflight import prepare_compose_rollback

REDIS_PW = SECRETS["secrets/redis_password"]
HAPAIR_REDIS_CLI = [*pair("node1"), "exec", "-T", "hapair-redis", "redis-cli", "-p", "6379"]
USER_REDIS_CLI = [*app("node1"), "exec", "-T", "redis", "redis-cli"]
ONE_OFF = [*app("node1"), "run", "--rm", "--no-deps", "-T"]
ENV_RUN = [*ONE_OFF, "--entrypoint", "sh", "postgres", "-c", PG_ENV_SCRIPT, "sh"]
PSQL = [*app("node1"), "exec", "-T", "-u", "postgres", "-e", "PGUSER=cms", "postgres", "psql",
        "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "cms", "-At"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    """Nothing leaves the process: Patroni's REST and Sentinel are answered here."""
    patched: list[tuple[str, object]] = []

    class Answer:
        status_code = 200
        text = "{}"

    def patch(url: str, json: object, **_kw: object) -> Answer:
        patched.append((url, json))
        return Answer()

    monkeypatch.setattr(preflight, "cluster", lambda p: members())
    monkeypatch.setattr(steps_front, "sentinel_master", lambda p: "node1")
    monkeypatch.setattr(steps_pg.httpx, "patch", patch)
    monkeypatch.setattr(steps_pg.time, "sleep", lambda s: None)
    monkeypatch.setattr(steps_redis.time, "sleep", lambda s: None)
    return patched


def _plan(tmp_path: Path, transports: dict[str, RecordingTransport] | None = None,
          *, vip: bool = False) -> tuple[Plan, WorkflowContext]:
    ctx, p = context(tmp_path, transports, vip=vip)
    completed_upgrade(ctx.runs_root)
    pre, cr = prepare_compose_rollback(ctx, p, None)
    assert pre.refusals == [] and cr is not None
    return build_compose_rollback_plan(cr, ctx.runs_root), ctx


def _step(plan: Plan, host: str, name: str):  # noqa: ANN202 - a Step
    return next(s for s in plan.steps if s.id == f"rollback/{host}/{name}")


def _run(plan: Plan, ctx: WorkflowContext, host: str, name: str) -> list[tuple[str, ...]]:
    """The step's action; the commands it ran on `host` (compose's version probe aside)."""
    t = ctx.transports[host]
    before = len(t.commands)  # type: ignore[attr-defined]
    step = _step(plan, host, name)
    step.action.run(StepContext(host, ctx.transports))
    return [c for c in t.commands[before:] if c[-1] != "version"]  # type: ignore[attr-defined]


def _calls(ctx: WorkflowContext, host: str, argv: list[str]):  # noqa: ANN202
    return [c for c in ctx.transports[host].calls  # type: ignore[attr-defined]
            if c.kind == "run" and list(c.argv) == argv]


# --- Redis --------------------------------------------------------------------------------------


def _redis_answers(t: RecordingTransport, user_keys: int) -> None:
    t.on(HAPAIR_REDIS_CLI, Reply(stdout="OK\n# Replication\nrole:master\n"),
         Reply(stdout="OK\n3\n"))
    t.on(USER_REDIS_CLI, Reply(stdout="OK\nPONG\n# Replication\nrole:master\n"),
         Reply(stdout=f"OK\n{user_keys}\n"))


def test_redis_is_handed_back_stop_first_with_every_key(tmp_path: Path) -> None:
    transports = hosts()
    plan, ctx = _plan(tmp_path, transports)
    _redis_answers(transports["node1"], 3)
    ran = _run(plan, ctx, "node1", "compose.redis-handback")
    assert [c for c in ran if c[:2] != ("docker", "ps")] == [
        tuple(HAPAIR_REDIS_CLI),  # INFO replication: still the master
        tuple(HAPAIR_REDIS_CLI),  # DBSIZE
        (*pair("node1"), "stop", "-t", "60", "hapair-redis"),
        (*app("node1"), "up", "-d", "--no-deps", "redis"),
        tuple(USER_REDIS_CLI),  # PING with the password
        tuple(USER_REDIS_CLI),  # DBSIZE: the same data
    ]
    sent = [c.input.decode() for c in _calls(ctx, "node1", USER_REDIS_CLI)]
    assert all(s.startswith(f"AUTH {REDIS_PW}\n") for s in sent)
    assert all(REDIS_PW not in " ".join(c) for c in ran)  # the password only on stdin


def test_a_user_redis_that_starts_empty_fails_the_step(tmp_path: Path) -> None:
    transports = hosts()
    plan, ctx = _plan(tmp_path, transports)
    _redis_answers(transports["node1"], 0)
    with pytest.raises(StepFailed, match="started EMPTY although hapair-redis held 3 keys"):
        _run(plan, ctx, "node1", "compose.redis-handback")


def test_sentinels_and_the_peer_s_redis_stop_volumes_kept(tmp_path: Path) -> None:
    plan, ctx = _plan(tmp_path)
    for host in ("node1", "node2", "witness"):
        assert _run(plan, ctx, host, "compose.sentinel-stopped") == [
            (*pair(host), "rm", "-s", "-f", "hapair-sentinel")]
    assert _run(plan, ctx, "node2", "compose.redis-stopped") == [
        (*pair("node2"), "rm", "-s", "-f", "hapair-redis")]
    assert _run(plan, ctx, "node2", "compose.app-stopped") == [(*app("node2"), "stop")]


# --- PostgreSQL --------------------------------------------------------------------------------


def test_postgres_is_handed_back_to_the_user_s_service_on_the_same_volume(
        tmp_path: Path, no_network: list[tuple[str, object]]) -> None:
    transports = hosts()
    plan, ctx = _plan(tmp_path, transports)
    transports["node1"].on(ENV_RUN, stdout=f"PGDATA={PGDATA}\nAUTH=\nINITDB=\n")
    _run(plan, ctx, "node1", "compose.pg-async")
    assert no_network == [("http://10.0.0.11:8008/config",
                           {"synchronous_mode": False, "synchronous_mode_strict": False})]
    assert _run(plan, ctx, "node2", "compose.patroni-stopped") == [
        (*pair("node2"), "rm", "-s", "-f", "hapair-patroni")]
    ran = _run(plan, ctx, "node1", "compose.pg-handback")
    hba = stock_pg_hba(17, PgEnv(PGDATA, "", ""))
    assert ran == [
        tuple(ENV_RUN),  # the service's settings, read before anything stops
        (*pair("node1"), "stop", "-t", "120", "hapair-patroni"),  # a clean shutdown
        (*ONE_OFF, "-u", "postgres", "--entrypoint", "sh", "postgres", "-c", HANDBACK_SCRIPT,
         "sh", PGDATA, hba, STOCK_PG_IDENT),
        (*app("node1"), "up", "-d", "--no-deps", "postgres"),
        tuple(PSQL),  # ready: SELECT 1 as the image's superuser
    ]
    assert "host all all all scram-sha-256" in hba


def test_a_user_service_on_another_pgdata_stops_nothing(tmp_path: Path) -> None:
    transports = hosts()
    plan, ctx = _plan(tmp_path, transports)
    transports["node1"].on(ENV_RUN, stdout="PGDATA=/var/lib/postgresql/data\nAUTH=\nINITDB=\n")
    with pytest.raises(StepFailed, match="has PGDATA=/var/lib/postgresql/data, Patroni ran"):
        _run(plan, ctx, "node1", "compose.pg-handback")
    assert not any("stop" in c for c in transports["node1"].commands)


def test_cleanup_sql_runs_in_the_user_s_postgres(tmp_path: Path) -> None:
    plan, ctx = _plan(tmp_path)
    sql = {}
    for name in ("compose.pg-slot-dropped", "compose.pg-replication-role",
                 "compose.pg-slot-cap"):
        assert _run(plan, ctx, "node1", name) == [tuple(PSQL)]
        sql[name] = _calls(ctx, "node1", PSQL)[-1].input.decode()
    assert "slot_name = 'node2' AND NOT active" in sql["compose.pg-slot-dropped"]
    assert sql["compose.pg-replication-role"] == "DROP ROLE IF EXISTS replicator"
    assert sql["compose.pg-slot-cap"].startswith("ALTER SYSTEM RESET max_slot_wal_keep_size;")


# --- the compose file, the app, hapair's project ------------------------------------------------


def test_the_original_file_comes_back_and_the_edit_is_kept(tmp_path: Path) -> None:
    transports = hosts()
    plan, ctx = _plan(tmp_path, transports)
    ran = _run(plan, ctx, "node1", "compose.file-restored")
    assert ran == [("sh", "-c", '[ -f "$2" ] || [ ! -f "$1" ] || cp -p "$1" "$2"', "sh", FILE,
                    f"{FILE}.hapair-pair")]
    assert transports["node1"].text(FILE) == ORIGINAL
    step = _step(plan, "node1", "compose.file-restored")
    assert step.verify.check(StepContext("node1", ctx.transports)).ok
    assert EDITED != ORIGINAL


def test_the_changed_app_services_are_recreated_then_hapair_goes_down(tmp_path: Path) -> None:
    plan, ctx = _plan(tmp_path)
    assert _run(plan, ctx, "node1", "compose.app-recreated") == [
        (*app("node1"), "up", "-d", "--no-deps", "backend"),
        (*app("node1"), "up", "-d", "--no-deps", "worker"),
    ]
    for host in ("node1", "node2", "witness"):
        assert _run(plan, ctx, host, "compose.hapair-down") == [(*pair(host), "down")]
    assert _run(plan, ctx, "node2", "compose.app-down") == [(*app("node2"), "down")]


# --- the front door with a VIP ----------------------------------------------------------------


def test_with_a_vip_the_address_stays_on_the_target(tmp_path: Path) -> None:
    transports = hosts()
    plan, ctx = _plan(tmp_path, transports, vip=True)
    peer = _run(plan, ctx, "node2", "compose.keepalived-stopped")
    assert peer[-1][:2] == ("sh", "-c") and peer[-1][3:] == (
        "sh", "10.0.0.10", "eth0", "3", *pair("node2"), "stop", "-t", "60", "hapair-keepalived")
    target = _run(plan, ctx, "node1", "compose.front-door-static")
    assert target[0] == ("install", "-d", "-m", "0755", "/etc/hapair")
    assert 'ip addr add "$v/32" dev "$i"' in target[1][2]
    assert target[1][3:] == ("sh", "10.0.0.10", "eth0", *pair("node1"), "stop", "-t", "60",
                             "hapair-keepalived")
    assert transports["node1"].text("/etc/hapair/static-addresses").endswith("10.0.0.10/32\n")


def test_the_peer_keeps_the_vip_when_nobody_would_take_it(tmp_path: Path) -> None:
    transports = hosts()
    transports["node2"].on(["ip", "-o", "addr", "show"],
                           stdout="2: eth0    inet 10.0.0.10/32 scope global eth0\n")
    plan, ctx = _plan(tmp_path, transports, vip=True)
    with pytest.raises(StepFailed, match="keepalived does not run on node1"):
        _run(plan, ctx, "node2", "compose.keepalived-stopped")


# --- resumed runs, secrets, host tools --------------------------------------------------------


def test_early_checks_still_hold_once_the_data_is_handed_back(tmp_path: Path) -> None:
    """A rollback resumed after the hand-backs skips its first steps (their checks hold
    without Patroni, Sentinel or hapair-redis) instead of failing on them."""
    transports = hosts()
    plan, ctx = _plan(tmp_path, transports)
    for service in ("hapair-patroni", "hapair-redis"):
        transports["node1"].on(ps("cms-hapair", service), stdout="")
    sc = StepContext("node1", ctx.transports)
    for name in ("compose.redis-master", "compose.pg-async"):
        assert _step(plan, "node1", name).verify.check(sc).ok, name


def test_hosts_only_need_docker_s_tools_and_never_see_a_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps_redis, "READY_TIMEOUT_S", 0.0)
    monkeypatch.setattr(steps_pg, "READY_TIMEOUT_S", 0.0)
    plan, ctx = _plan(tmp_path, vip=True)
    used = run_every_step(plan, ctx.transports)  # type: ignore[arg-type]
    assert "docker" in used and used - DOCKER_HOST_TOOLS == set()
    ran = [c for t in ctx.transports.values() for c in t.commands]  # type: ignore[attr-defined]
    secrets = [*SECRETS.values(), *(s.reveal() for s in ctx.generated.existing())]
    for argv in ran:
        for secret in secrets:
            assert secret not in " ".join(argv)
