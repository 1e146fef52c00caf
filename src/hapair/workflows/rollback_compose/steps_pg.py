"""Compose rollback, PostgreSQL (decision 0001's hand-over, reversed): synchronous replication
off, the standby's Patroni stopped (its volume kept), then the target's hapair-patroni stops
cleanly, the data directory gets the single server's config back (model.py says what Patroni
had changed) and the user's postgres service starts on the same volume from its original
definition. Then the peer's slot, the replication role and the slot cap the upgrade set go."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from hapair.errors import StepFailed
from hapair.plan.step import Check, Fn, Step, StepContext, StepKind
from hapair.workflows.rollback.model import patroni_slot_name
from hapair.workflows.rollback_compose.model import (
    HANDBACK_SCRIPT,
    PG_ENV_SCRIPT,
    STOCK_PG_IDENT,
    parse_pg_env,
    sid,
    stock_pg_hba,
)
from hapair.workflows.rollback_compose.setup import ComposeRollback, containers, none_running
from hapair.workflows.upgrade.params import REPLICATION_USER
from hapair.workflows.upgrade.stepkit import guarded, sql_check, sql_run
from hapair.workflows.upgrade_compose.incontainer import in_container

READY_TIMEOUT_S = 120.0


def async_step(cr: ComposeRollback) -> Step:
    t = cr.target
    url = cr.p.patroni(t).me.rest_url("/config")

    def sync_off(_ctx: StepContext) -> None:
        r = httpx.patch(url, json={"synchronous_mode": False, "synchronous_mode_strict": False},
                        timeout=10, trust_env=False)
        if r.status_code != 200:
            raise StepFailed(f"PATCH {url} answered {r.status_code}: {r.text[:200]}")

    def no_sync(ctx: StepContext) -> Check:
        if not containers(ctx, t, cr.hapair_project(t), "hapair-patroni"):
            return Check(True, f"{t}: Patroni no longer runs (handed back)")
        ok, out = cr.sql(ctx, "patroni", "SHOW synchronous_standby_names")
        return Check(ok and out == "", f"{t}: synchronous_standby_names = '{out}'")

    return Step(id=sid(t, "pg-async"), host=t, kind=StepKind.RELOAD,
                reason="synchronous replication off first: with the standby gone, commits "
                       "would wait for it forever",
                client_impact="none: commits stop waiting for the standby's flush",
                action=Fn(f"PATCH {url} synchronous_mode=false", sync_off),
                verify=guarded("synchronous_standby_names is empty", no_sync),
                settle_timeout=30)


def peer_patroni_step(cr: ComposeRollback) -> Step:
    peer = cr.peer
    return Step(id=sid(peer, "patroni-stopped"), host=peer, kind=StepKind.COMMAND,
                reason=f"the standby on {peer} stops before the leader lets its key go (so it "
                       "can never be promoted); its data volume is kept as it is",
                action=Fn(f"rm -s -f hapair-patroni on {peer} (it stops its PostgreSQL)",
                          lambda ctx: cr.runtime(ctx, peer).remove("patroni")),
                verify=guarded(f"hapair-patroni stopped on {peer}", lambda ctx: none_running(
                    ctx, peer, cr.hapair_project(peer), "hapair-patroni",
                    what="hapair-patroni")),
                settle_timeout=30)


def _one_off(cr: ComposeRollback, ctx: StepContext, script: str, *args: str,
             user: str | None = None) -> str:
    """A one-off container of the user's postgres service (its image, volume and
    environment; no ports; removed after) running `sh -c script`."""
    app = cr.runtime(ctx, cr.target).project("app")
    opts = ["-u", user] if user else []
    argv = app.argv("run", "--rm", "--no-deps", "-T", *opts, "--entrypoint", "sh",
                    cr.pg_service, "-c", script, "sh", *args)
    return ctx.on(cr.target).run(argv, timeout=300).stdout


def _wait_ready(ctx: StepContext, cr: ComposeRollback) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        ok, out = cr.sql(ctx, "postgres", "SELECT 1")
        if ok:
            return
        if time.monotonic() > deadline:
            raise StepFailed(f"{cr.target}: {cr.pg_service} not ready within "
                             f"{READY_TIMEOUT_S:g} s: {out}")
        time.sleep(1)


def handback_step(cr: ComposeRollback) -> Step:
    t, service = cr.target, cr.pg_service
    major = cr.p.inv.services.postgres.version

    def hand_back(ctx: StepContext) -> None:
        env = parse_pg_env(_one_off(cr, ctx, PG_ENV_SCRIPT))  # before the stop: no downtime
        if env.pgdata.rstrip("/") != cr.data_dir.rstrip("/"):
            raise StepFailed(f"{t}: {service} has PGDATA={env.pgdata}, Patroni ran "
                             f"{cr.data_dir}: the user's service would not start this data")
        rt = cr.runtime(ctx, t)
        rt.stop("patroni")  # stop -t 120: Patroni shuts PostgreSQL down cleanly, then exits
        _one_off(cr, ctx, HANDBACK_SCRIPT, cr.data_dir, stock_pg_hba(major, env),
                 STOCK_PG_IDENT, user="postgres")
        rt.project("app").start(service)  # up -d --no-deps: the original definition
        _wait_ready(ctx, cr)

    def single(ctx: StepContext) -> Check:
        gone = none_running(ctx, t, cr.hapair_project(t), "hapair-patroni",
                            what="hapair-patroni")
        if not gone.ok:
            return gone
        ok, out = cr.sql(ctx, "postgres", "SELECT pg_is_in_recovery(), "
                         "(SELECT count(*) FROM pg_file_settings WHERE sourcefile LIKE "
                         "'%postgresql.base.conf'), "
                         "(SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL)")
        good = ok and out == "f|0|0"
        return Check(good, f"{t}: {service} " + (
            "is a primary with its own postgresql.conf and a valid pg_hba.conf" if good
            else f"answers {out!r} (in recovery | Patroni's includes | pg_hba errors)"))

    return Step(id=sid(t, "pg-handback"), host=t, kind=StepKind.RESTART,
                reason=f"the one PostgreSQL restart: hapair-patroni stops cleanly, the data "
                       f"directory gets the single server's config back, {service} starts the "
                       "same volume from its original definition",
                client_impact="the app's database calls fail from this stop until its "
                              "containers are recreated from the original file (seconds)",
                action=Fn(f"read {service}'s PGDATA/POSTGRES_HOST_AUTH_METHOD/"
                          "POSTGRES_INITDB_ARGS (one-off container); stop -t 120 "
                          "hapair-patroni; postgresql.base.conf → postgresql.conf, pg_hba.conf "
                          "and pg_ident.conf as the image writes them (Patroni's kept as "
                          f"*.hapair-pair); up -d --no-deps {service}", hand_back),
                verify=guarded(f"{service} serves the data as a primary", single),
                settle_timeout=60)


def cleanup_steps(cr: ComposeRollback) -> list[Step]:
    """SQL in the user's postgres container once it runs the data."""
    t, db = cr.target, cr.database
    slot = patroni_slot_name(cr.peer)
    where = f"the {cr.pg_service} container"

    def zero(what: str) -> Callable[[str], Check]:
        return lambda out: Check(out == "0", f"{t}: {out or '?'} {what}")

    steps = [
        Step(id=sid(t, "pg-slot-dropped"), host=t, kind=StepKind.SQL,
             reason=f"the slot Patroni kept for {cr.peer} would retain WAL forever: dropped",
             action=sql_run(f"drop slot {slot}", db,
                            "SELECT pg_drop_replication_slot(slot_name) FROM "
                            f"pg_replication_slots WHERE slot_name = '{slot}' AND NOT active"),
             verify=sql_check(f"no slot {slot}", db, "SELECT count(*) FROM "
                              f"pg_replication_slots WHERE slot_name = '{slot}'",
                              zero(f"slot(s) {slot}"))),
        Step(id=sid(t, "pg-replication-role"), host=t, kind=StepKind.SQL,
             reason=f"nothing replicates any more: role {REPLICATION_USER} dropped (no "
                    "pg_hba rule names it now)",
             action=sql_run(f"DROP ROLE {REPLICATION_USER}", db,
                            f"DROP ROLE IF EXISTS {REPLICATION_USER}"),
             verify=sql_check(f"no role {REPLICATION_USER}", db, "SELECT count(*) FROM "
                              f"pg_roles WHERE rolname = '{REPLICATION_USER}'",
                              zero(f"role(s) {REPLICATION_USER}"))),
        Step(id=sid(t, "pg-slot-cap"), host=t, kind=StepKind.RELOAD,
             reason="the upgrade's ALTER SYSTEM max_slot_wal_keep_size goes (no slot left to "
                    "cap): postgresql.auto.conf as before",
             action=sql_run("ALTER SYSTEM RESET max_slot_wal_keep_size", db,
                            "ALTER SYSTEM RESET max_slot_wal_keep_size;\n"
                            "SELECT pg_reload_conf();"),
             verify=sql_check("max_slot_wal_keep_size not in postgresql.auto.conf", db,
                              "SELECT count(*) FROM pg_file_settings WHERE name = "
                              "'max_slot_wal_keep_size' AND sourcefile LIKE "
                              "'%postgresql.auto.conf'", zero("auto.conf setting(s)"))),
    ]
    return [in_container(s, lambda ctx: cr.pg_shell(ctx, "postgres"), where) for s in steps]

