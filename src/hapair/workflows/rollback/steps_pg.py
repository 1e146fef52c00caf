"""Rollback phase for PostgreSQL (the reverse of decision 0001's hand-over): synchronous
replication off, the standby's Patroni stopped (its data directory stays), then behind
PgBouncer PAUSE the target's Patroni stops and the plain supervised `postgres` program starts
on the same data with the pre-upgrade config; PgBouncer points at it; RESUME. The peer's
slot and the replication role go (nothing retains WAL, nothing may replicate)."""

from __future__ import annotations

import time

import httpx

from hapair.components.pgbouncer.admin import pause_sql, resume_sql
from hapair.components.pgbouncer.config import render_pgbouncer_config
from hapair.errors import StepFailed
from hapair.exec.runtime import ServiceState
from hapair.plan.step import Check, Fn, Step, StepContext, StepKind
from hapair.workflows.rollback import backup
from hapair.workflows.rollback.model import RestoreFile, patroni_slot_name
from hapair.workflows.rollback.params import RollbackParams, sid
from hapair.workflows.upgrade.params import REPLICATION_USER
from hapair.workflows.upgrade.stepkit import (
    FileIsOneOf,
    all_checks,
    guarded,
    psql_argv,
    service_absent,
    service_running,
    sql_check,
    sql_run,
)
from hapair.workflows.upgrade.steps_pg import pgbouncer_admin

READY_TIMEOUT_S = 60.0


def _pg_bin(rp: RollbackParams, name: str) -> str:
    return f"{rp.up.inv.services.postgres.bin_dir}/{name}"


def pg_steps(rp: RollbackParams) -> list[Step]:
    t, peer = rp.target, rp.peer
    db = rp.database
    direct = render_pgbouncer_config(rp.up.pgbouncer(t, direct=True))

    def sync_off(_ctx: StepContext) -> None:
        url = f"http://{rp.host(t).address}:8008/config"
        r = httpx.patch(url, json={"synchronous_mode": False, "synchronous_mode_strict": False},
                        timeout=10, trust_env=False)
        if r.status_code != 200:
            raise StepFailed(f"PATCH {url} answered {r.status_code}: {r.text[:200]}")

    def peer_down(ctx: StepContext) -> Check:
        status = rp.runtime(ctx, peer).status("patroni").state
        res = ctx.on(peer).run([_pg_bin(rp, "pg_ctl"), "status", "-D", rp.data_dir],
                               user="postgres", check=False)
        down = res.returncode in (3, 4)  # pg_ctl: 3 = no server running, 4 = no data dir
        return Check(status is ServiceState.ABSENT and down,
                     f"{peer}: patroni {status.value}, PostgreSQL "
                     + ("stopped" if down else "still running"))

    def hand_back(ctx: StepContext) -> None:
        tt, runtime = ctx.on(t), rp.runtime(ctx, t)
        files = postgres_files(rp)
        contents = {f.dest: backup.restored(ctx, rp, f) for f in files}  # read before PAUSE
        pgbouncer_admin(ctx, pause_sql(db))  # in-flight queries finish, new ones wait
        try:
            runtime.remove("patroni")  # Patroni stops PostgreSQL (fast shutdown) on exit
            stopped = tt.run([_pg_bin(rp, "pg_ctl"), "status", "-D", rp.data_dir],
                             user="postgres", check=False)
            if stopped.returncode != 3:
                tt.run([_pg_bin(rp, "pg_ctl"), "stop", "-m", "fast", "-w", "-D", rp.data_dir],
                       user="postgres", timeout=90)
            for f in files:
                tt.write_file(f.dest, contents[f.dest], mode=f.mode, owner=f.owner)
            sup = ["supervisorctl", "-c", rp.supervisor_conf(t)]
            tt.run([*sup, "reread"])
            tt.run([*sup, "update", "postgres"], check=False)
            runtime.start("postgres")
            _wait_ready(ctx, rp)
            tt.write_file(direct.path, direct.content, mode=direct.mode, owner=direct.owner)
            pgbouncer_admin(ctx, "RELOAD")  # new server connections go to 127.0.0.1:5432
        finally:
            pgbouncer_admin(ctx, resume_sql(db))

    def config_restored(ctx: StepContext) -> Check:
        for f in postgres_files(rp):
            try:
                have = ctx.on(t).read_file(f.dest).decode()
            except FileNotFoundError:
                have = ""
            if have != backup.restored(ctx, rp, f):
                return Check(False, f"{t}: {f.dest} is not the pre-upgrade file")
        return Check(True, f"{t}: the pre-upgrade PostgreSQL config and program are in place")

    def primary_ok(out: str) -> Check:
        return Check(out == "f", f"{t}: pg_is_in_recovery() = {out or '?'}")

    slot = patroni_slot_name(peer)
    return [
        Step(id=sid(t, "postgres.async"), host=t, kind=StepKind.RELOAD,
             reason="synchronous replication off first: with the standby gone, commits would "
                    "wait for it forever",
             client_impact="none: commits stop waiting for the standby's flush",
             action=Fn("PATCH Patroni /config synchronous_mode=false", sync_off),
             verify=sql_check("synchronous_standby_names is empty", db,
                              "SHOW synchronous_standby_names",
                              lambda out: Check(out == "", f"{t}: synchronous_standby_names "
                                                           f"= '{out}'")),
             settle_timeout=30),
        Step(id=sid(peer, "patroni.stopped"), host=peer, kind=StepKind.COMMAND,
             reason=f"the standby on {peer} stops before the leader lets its key go (so it "
                    "can never be promoted); its data directory is kept as it is",
             action=Fn(f"stop and remove `patroni` on {peer} (it stops its PostgreSQL)",
                       lambda ctx: rp.runtime(ctx, peer).remove("patroni")),
             verify=guarded(f"{peer}: no Patroni, no PostgreSQL", peer_down),
             settle_timeout=30),
        Step(id=sid(t, "postgres.handback"), host=t, kind=StepKind.RESTART,
             reason="the one PostgreSQL restart: PgBouncer PAUSE, Patroni stops the server, "
                    "the pre-upgrade config and the supervised `postgres` program start it "
                    "on the same data, PgBouncer → 127.0.0.1:5432, RESUME",
             client_impact="queries wait a few seconds behind PAUSE; none fail",
             action=Fn("PAUSE; remove patroni; restore postgresql.conf, pg_hba.conf, "
                       "postgresql.auto.conf, the postgres program; start it; PgBouncer → "
                       "local; RESUME", hand_back),
             verify=all_checks("plain PostgreSQL under supervisor, PgBouncer direct",
                               service_absent(rp.runtime_for, "patroni"),
                               service_running(rp.runtime_for, "postgres"),
                               guarded("pre-upgrade config", config_restored),
                               FileIsOneOf(direct.path, [direct.content], "the direct upstream"),
                               sql_check("primary", db, "SELECT pg_is_in_recovery()",
                                         primary_ok)),
             settle_timeout=30),
        Step(id=sid(t, "postgres.slot-dropped"), host=t, kind=StepKind.SQL,
             reason=f"the slot kept for {peer} would retain WAL forever: dropped",
             action=sql_run(f"drop slot {slot}", db,
                            "SELECT pg_drop_replication_slot(slot_name) FROM "
                            f"pg_replication_slots WHERE slot_name = '{slot}' AND NOT active"),
             verify=sql_check(f"no slot {slot}", db,
                              "SELECT count(*) FROM pg_replication_slots WHERE slot_name = "
                              f"'{slot}'", lambda out: Check(out == "0", f"{out} slot(s) {slot}"))),
        Step(id=sid(t, "postgres.replication-role"), host=t, kind=StepKind.SQL,
             reason=f"nothing replicates any more: role {REPLICATION_USER} dropped (its "
                    "pg_hba line went with the pre-upgrade pg_hba.conf)",
             action=sql_run(f"DROP ROLE {REPLICATION_USER}", db,
                            f"DROP ROLE IF EXISTS {REPLICATION_USER}"),
             verify=sql_check(f"no role {REPLICATION_USER}", db,
                              f"SELECT count(*) FROM pg_roles WHERE rolname = "
                              f"'{REPLICATION_USER}'",
                              lambda out: Check(out == "0", f"{out} role(s) {REPLICATION_USER}"))),
    ]


def postgres_files(rp: RollbackParams) -> list[RestoreFile]:
    """What the hand-back restores: the data directory's config files and the program."""
    data = rp.data_dir.rstrip("/") + "/"
    return [f for f in backup.files_to_restore(rp)
            if f.dest.startswith(data) or f.dest.endswith("/postgres.conf")]


def _wait_ready(ctx: StepContext, rp: RollbackParams) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        res = ctx.on(rp.target).run(psql_argv(rp.database), input="SELECT 1", user="postgres",
                                    check=False, timeout=10)
        if res.ok:
            return
        if time.monotonic() > deadline:
            raise StepFailed(f"{rp.target}: PostgreSQL not ready within {READY_TIMEOUT_S:g} s: "
                             f"{res.stderr.strip()[:200]}")
        time.sleep(0.2)
