"""Upgrade phases for PostgreSQL (decision 0001): replication prepared with SQL and reloads,
PgBouncer and the local router in front of the app, the one restart behind PAUSE that hands
the server to Patroni, the standby cloned by Patroni, then synchronous replication."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import httpx

from hapair.components.patroni.config import patroni_argv, render_patroni_config
from hapair.components.pgbouncer.admin import admin_psql_argv, pause_sql, resume_sql
from hapair.components.pgbouncer.config import (
    pgbouncer_argv,
    render_pgbouncer_config,
    render_userlist,
)
from hapair.components.router.config import render_router_config, router_argv
from hapair.components.scram import scram_sha256_verifier, sql_literal
from hapair.errors import StepFailed
from hapair.exec.runtime import ServiceSpec, ServiceState
from hapair.plan.step import Check, Fn, FnCheck, Run, Step, StepContext, StepKind, Undo
from hapair.workflows.upgrade.params import (
    PATRONI_BIN,
    PGBOUNCER_ADMIN,
    PGBOUNCER_PORT,
    REPLICATION_USER,
    UpgradeParams,
)
from hapair.workflows.upgrade.stepkit import (
    FileIsOneOf,
    RuntimeFor,
    all_checks,
    file_step,
    guarded,
    http_ok,
    service_absent,
    service_running,
    service_step,
    sql_check,
    sql_run,
)

PLAN = "upgrade"
PGPASS = "/var/lib/postgresql/.pgpass_hapair"  # the PgBouncer admin console's password, 0600


def sid(host: str, name: str) -> str:
    return f"{PLAN}/{host}/{name}"


def _scram_matches(verifier: str, password: str) -> bool:
    """Does a stored SCRAM-SHA-256 verifier belong to `password`? (recomputed, never shown)"""
    try:
        head, keys = verifier.split("$", 1)[1].split("$")
        iterations, salt = head.split(":")
        stored_key = keys.split(":")[0]
    except (IndexError, ValueError):
        return False
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                 int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(hashlib.sha256(client_key).digest()).decode(),
                               stored_key)


# --- phase 4: replication prepared on the running primary (SQL and reloads only) -----------


def prepare_primary_steps(p: UpgradeParams) -> list[Step]:
    pg, primary = p.inv.services.postgres, p.names.primary
    standby = p.host(p.names.standby)

    def role_sql() -> str:
        verifier = sql_literal(scram_sha256_verifier(p.replication_password.reveal()))
        return (f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                f"'{REPLICATION_USER}') THEN CREATE ROLE {REPLICATION_USER} WITH REPLICATION "
                f"LOGIN PASSWORD {verifier}; ELSE ALTER ROLE {REPLICATION_USER} WITH "
                f"REPLICATION LOGIN PASSWORD {verifier}; END IF; END $$;")

    def role_ok(out: str) -> Check:
        ok = bool(out) and _scram_matches(out, p.replication_password.reveal())
        return Check(ok, f"role {REPLICATION_USER} "
                         + ("has REPLICATION and the planned password" if ok
                            else "is missing or has another password"))

    hba_line = f"host replication {REPLICATION_USER} {standby.address}/32 scram-sha-256"
    hba_script = (
        # Append the peer's line once, check the whole file with pg_hba_file_rules BEFORE
        # reloading, and put the old file back if PostgreSQL would reject it.
        'set -e; f="$1/pg_hba.conf"; line="$2"; grep -qxF "$line" "$f" && exit 0; '
        'cp -p "$f" "$f.hapair-before"; printf "%s\\n" "$line" >> "$f"; '
        'bad=$(psql -X -At -c "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL"); '
        'if [ "$bad" != 0 ]; then cp -p "$f.hapair-before" "$f"; echo "pg_hba.conf rejected" >&2; '
        'exit 1; fi; psql -X -At -c "SELECT pg_reload_conf()" >/dev/null'
    )
    hba_query = ("SELECT count(*) FROM pg_hba_file_rules WHERE 'replication' = ANY(database) "
                 f"AND address = '{standby.address}' AND error IS NULL")
    return [
        Step(id=sid(primary, "postgres.replication-role"), host=primary, kind=StepKind.SQL,
             reason=f"the standby streams as role {REPLICATION_USER} (SCRAM verifier computed "
                    "on the controller: no plaintext password reaches the server)",
             action=sql_run("the replication role SQL", pg.database, role_sql),
             verify=sql_check(f"role {REPLICATION_USER} is ready", pg.database,
                              f"SELECT rolpassword FROM pg_authid WHERE rolname = "
                              f"'{REPLICATION_USER}' AND rolreplication", role_ok)),
        Step(id=sid(primary, "postgres.hba-peer"), host=primary, kind=StepKind.RELOAD,
             reason=f"pg_hba line for the standby's address only ({standby.address}/32), "
                    "checked with pg_hba_file_rules before the reload",
             action=Run(["sh", "-c", hba_script, "sh", pg.data_dir, hba_line], user="postgres"),
             verify=sql_check("pg_hba lets the standby replicate", pg.database, hba_query,
                              lambda out: Check(out not in ("", "0"),
                                                f"{out or 0} pg_hba rule(s) for the standby"))),
        Step(id=sid(primary, "postgres.slot-cap"), host=primary, kind=StepKind.RELOAD,
             reason="cap the WAL a replication slot may hold (max_slot_wal_keep_size), so a "
                    "dead standby cannot fill the primary's disk",
             action=sql_run("ALTER SYSTEM max_slot_wal_keep_size", pg.database,
                            "ALTER SYSTEM SET max_slot_wal_keep_size = '4GB'; "
                            "SELECT pg_reload_conf();"),
             verify=sql_check("max_slot_wal_keep_size is 4GB", pg.database,
                              "SHOW max_slot_wal_keep_size",
                              lambda out: Check(out == "4GB", f"max_slot_wal_keep_size = {out}"))),
    ]


# --- the local router and PgBouncer on a node --------------------------------------------------


def admin_argv(statement: str) -> list[str]:
    return admin_psql_argv(statement, PGBOUNCER_ADMIN, port=PGBOUNCER_PORT)


def pgbouncer_admin(ctx: StepContext, statement: str, timeout: float = 60) -> str:
    res = ctx.transport.run(admin_argv(statement), user="postgres", env={"PGPASSFILE": PGPASS},
                            timeout=timeout)
    return res.stdout


def router_steps(p: UpgradeParams, host: str, runtime_for: RuntimeFor, *,
                 direct: bool) -> list[Step]:
    """HAProxy local router + PgBouncer on `host`. `direct`: PgBouncer starts in front of the
    local PostgreSQL (node1 before the hand-over); otherwise in front of the router."""
    router = p.router(host)
    cfg = render_router_config(router)
    pgb_direct = render_pgbouncer_config(p.pgbouncer(host, direct=True))
    pgb_router = render_pgbouncer_config(p.pgbouncer(host, direct=False))
    pgb = pgb_direct if direct else pgb_router
    userlist = render_userlist(p.pgbouncer(host, direct=direct))
    pgpass = f"127.0.0.1:{PGBOUNCER_PORT}:pgbouncer:{PGBOUNCER_ADMIN}:"
    # The stats socket's directory lives in /run, which is empty after every boot.
    haproxy_cmd = ("sh", "-c", 'install -d -m 0755 /run/haproxy && exec "$@"', "sh",
                   *router_argv(router, "/usr/sbin/haproxy"))
    pgb_spec = ServiceSpec(name="pgbouncer",
                           command=tuple(pgbouncer_argv(p.pgbouncer(host, direct=direct),
                                                        "/usr/sbin/pgbouncer")),
                           user="postgres", stop_signal="INT", stop_wait_secs=30, priority=150)
    return [
        file_step(sid(host, "router.config"), host, cfg,
                  "local router: PostgreSQL to the node whose Patroni /primary answers 200, "
                  "Redis to the node Sentinel names master"),
        service_step(sid(host, "router.service"), host,
                     ServiceSpec(name="router", command=haproxy_cmd, stop_wait_secs=30,
                                 priority=120), runtime_for,
                     "the app reaches PostgreSQL and Redis through this router, wherever the "
                     "primary is"),
        Step(id=sid(host, "pgbouncer.files"), host=host, kind=StepKind.FILE,
             reason="PgBouncer config, its userlist and the admin passfile (0600, postgres)",
             action=_write_all([pgb, userlist], pgpass_line=pgpass, p=p),
             verify=all_checks("PgBouncer files in place",
                               FileIsOneOf(pgb.path, [pgb_direct.content, pgb_router.content]),
                               FileIsOneOf(userlist.path, [userlist.content]),
                               FileIsOneOf(PGPASS, [pgpass + p.pgbouncer_admin_password.reveal()
                                                    + "\n"], "the admin passfile")),
             undo=Undo(Run(["rm", "-f", pgb.path, userlist.path, PGPASS]))),
        service_step(sid(host, "pgbouncer.service"), host, pgb_spec, runtime_for,
                     "PgBouncer: PAUSE/RESUME hide restarts and switchovers from the app",
                     ready=guarded("the PgBouncer admin console answers",
                                   lambda ctx: Check(bool(pgbouncer_admin(ctx, "SHOW VERSION")),
                                                     f"{ctx.host}: PgBouncer answers"))),
    ]


def _write_all(files: list, *, pgpass_line: str, p: UpgradeParams) -> Fn:
    def run(ctx: StepContext) -> None:
        for f in files:
            ctx.transport.write_file(f.path, f.content, mode=f.mode, owner=f.owner)
        ctx.transport.write_file(PGPASS, pgpass_line + p.pgbouncer_admin_password.reveal() + "\n",
                                 mode=0o600, owner="postgres")

    return Fn(f"write {', '.join(f.path for f in files)} and {PGPASS} (0600)", run)


# --- phase 6: the hand-over to Patroni, behind PAUSE ------------------------------------------


def wait_primary(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=2, trust_env=False)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.3)
    raise StepFailed(f"Patroni did not report primary within {timeout:g} s ({last})")


def handover_steps(p: UpgradeParams, runtime_for: RuntimeFor) -> list[Step]:
    host = p.names.primary
    patroni = p.patroni(host)
    cfg = render_patroni_config(patroni)
    spec = ServiceSpec(name="patroni", command=tuple(patroni_argv(patroni, PATRONI_BIN)),
                       user="postgres", stop_wait_secs=90, priority=100)
    pgb_router = render_pgbouncer_config(p.pgbouncer(host, direct=False))
    pgb_direct = render_pgbouncer_config(p.pgbouncer(host, direct=True))
    database = p.inv.services.postgres.database
    primary_url = patroni.me.rest_url("/primary")

    def hand_over(ctx: StepContext) -> None:
        runtime = runtime_for(ctx, host)
        pgbouncer_admin(ctx, pause_sql(database))  # in-flight queries finish, new ones wait
        try:
            runtime.stop("postgres")  # a clean fast shutdown (stopsignal INT)
            was_running = runtime.status("patroni").state is ServiceState.RUNNING
            runtime.define(spec)  # Patroni starts PostgreSQL on the same data directory
            if was_running:  # a resumed run: make the running Patroni read its new config
                ctx.transport.run(["pkill", "-HUP", "-u", "postgres", "-x", "patroni"],
                                  check=False)
            wait_primary(primary_url, 90)
            ctx.transport.write_file(pgb_router.path, pgb_router.content, mode=pgb_router.mode,
                                     owner=pgb_router.owner)
            pgbouncer_admin(ctx, "RELOAD")  # new server connections go through the router
        finally:
            pgbouncer_admin(ctx, resume_sql(database))

    def hand_back(ctx: StepContext) -> None:
        runtime = runtime_for(ctx, host)
        pgbouncer_admin(ctx, pause_sql(database))
        try:
            runtime.remove("patroni")  # stops PostgreSQL with it
            ctx.transport.write_file(pgb_direct.path, pgb_direct.content, mode=pgb_direct.mode,
                                     owner=pgb_direct.owner)
            runtime.start("postgres")
            pgbouncer_admin(ctx, "RELOAD")
        finally:
            pgbouncer_admin(ctx, resume_sql(database))

    return [
        file_step(sid(host, "patroni.config"), host, cfg,
                  "Patroni configuration adopting the existing data directory (never initdb)"),
        Step(id=sid(host, "patroni.handover"), host=host, kind=StepKind.RESTART,
             reason="the one planned PostgreSQL restart: PgBouncer PAUSE, stop the server, "
                    "Patroni starts it with its settings and takes the leader key, RESUME",
             client_impact="queries wait a few seconds behind PAUSE; none fail",
             action=Fn("PAUSE; stop postgres; start patroni; wait /primary; PgBouncer → "
                       "router; RESUME", hand_over),
             verify=all_checks("Patroni holds the primary and PgBouncer uses the router",
                               http_ok(primary_url),
                               FileIsOneOf(pgb_router.path, [pgb_router.content],
                                           "the router upstream"),
                               service_running(runtime_for, "patroni")),
             undo=Undo(Fn("PAUSE; stop patroni; start postgres; PgBouncer → local; RESUME",
                           hand_back),
                       needs=(service_running(runtime_for, "patroni"),)),
             settle_timeout=30),
        Step(id=sid(host, "postgres.program-retired"), host=host, kind=StepKind.COMMAND,
             reason="the old supervisor program is already stopped; removing it means nothing "
                    "but Patroni can start PostgreSQL again",
             action=Fn("remove the stopped `postgres` program",
                       lambda ctx: runtime_for(ctx, host).remove("postgres")),
             verify=service_absent(runtime_for, "postgres")),
    ]


# --- phase 7: the standby, then synchronous replication ----------------------------------------


def standby_steps(p: UpgradeParams, runtime_for: RuntimeFor) -> list[Step]:
    host = p.names.standby
    patroni = p.patroni(host)
    spec = ServiceSpec(name="patroni", command=tuple(patroni_argv(patroni, PATRONI_BIN)),
                       user="postgres", stop_wait_secs=90, priority=100)
    return [
        file_step(sid(host, "patroni.config"), host, render_patroni_config(patroni),
                  "Patroni on the standby: with an empty data directory it clones the leader"),
        service_step(sid(host, "patroni.clone"), host, spec, runtime_for, CLONE_REASON,
                     ready=standby_streaming(p), settle=600, impact=CLONE_IMPACT),
        durability_step(p),
    ]


CLONE_REASON = ("the standby: cloned from the running primary (pg_basebackup through its slot) "
                "and streaming")
CLONE_IMPACT = "the primary reads its data once (I/O), no client impact"


def _members(p: UpgradeParams) -> list[dict]:
    url = p.patroni(p.names.primary).me.rest_url("/cluster")
    return httpx.get(url, timeout=3, trust_env=False).json().get("members", [])


def standby_streaming(p: UpgradeParams) -> FnCheck:
    """The standby is a cluster member, streaming, less than 16 MiB behind (Patroni /cluster
    on the primary)."""
    host = p.names.standby

    def streaming(_ctx: StepContext) -> Check:
        me = next((m for m in _members(p) if m.get("name") == host), None)
        if me is None:
            return Check(False, f"{host} is not a cluster member yet")
        state, lag = me.get("state"), me.get("lag")
        ok = state == "streaming" and lag not in (None, "unknown") and int(lag) < 16 * 1024**2
        return Check(ok, f"{host}: {me.get('role')} {state}, lag {lag} bytes")

    return guarded(f"{host} streams from the primary", streaming)


def durability_step(p: UpgradeParams) -> Step:
    """Synchronous replication on (durability sync/strict) once the standby streams."""
    host = p.names.standby
    leader = p.patroni(p.names.primary).me

    def sync_ok(_ctx: StepContext) -> Check:
        me = next((m for m in _members(p) if m.get("name") == host), {})
        want = "sync_standby" if p.inv.durability in ("sync", "strict") else "replica"
        return Check(me.get("role") == want, f"{host} is {me.get('role')} (want {want})")

    def enable_sync(_ctx: StepContext) -> None:
        body = {"synchronous_mode": p.inv.durability in ("sync", "strict"),
                "synchronous_mode_strict": p.inv.durability == "strict"}
        r = httpx.patch(leader.rest_url("/config"), json=body, timeout=10, trust_env=False)
        if r.status_code != 200:
            raise StepFailed(f"PATCH /config answered {r.status_code}: {r.text[:200]}")

    return Step(id=sid(p.names.primary, "patroni.durability"), host=p.names.primary,
                kind=StepKind.RELOAD,
                reason=f"durability `{p.inv.durability}`: synchronous replication on once the "
                       "standby has caught up" if p.inv.durability != "async"
                       else "durability `async`: asynchronous replication (bounded lag)",
                client_impact="commits wait for the standby's flush (sub-millisecond here)",
                action=Fn("PATCH Patroni /config synchronous_mode", enable_sync),
                verify=guarded("the standby has the planned replication role", sync_ok),
                settle_timeout=60)
