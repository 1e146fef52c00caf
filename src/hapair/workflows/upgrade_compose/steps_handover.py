"""Compose upgrade, PostgreSQL and the app: replication prepared with SQL in the user's
container, the data volume handed to hapair-patroni, the app recreated behind the router,
node2's clone, node2's app, synchronous replication, the guide's final checks."""

from __future__ import annotations

from hapair.compose.yamlio import load_plain
from hapair.exec.transport import Transport
from hapair.plan.step import Fn, Step, StepContext, StepKind, Undo
from hapair.workflows.upgrade import steps_pg
from hapair.workflows.upgrade.stepkit import FileIsOneOf, all_checks, http_ok
from hapair.workflows.upgrade.steps_pg import (
    CLONE_IMPACT,
    CLONE_REASON,
    durability_step,
    prepare_primary_steps,
    standby_streaming,
)
from hapair.workflows.upgrade.verify import final_steps
from hapair.workflows.upgrade_compose.incontainer import ShellFor, WithEnv, in_container
from hapair.workflows.upgrade_compose.setup import ComposeUpgrade
from hapair.workflows.upgrade_compose.steps_prepare import sid
from hapair.workflows.upgrade_compose.steps_services import hapair_service_step, running

HBA_STEP = "postgres.hba-peer"  # Patroni writes pg_hba.conf itself (its generated config)


def pg_shell(cu: ComposeUpgrade, program: str) -> ShellFor:
    """psql where PostgreSQL runs, as the image's superuser (POSTGRES_USER, not `postgres`)."""
    def shell(ctx: StepContext) -> Transport:
        inner = cu.runtime(ctx, ctx.host).shell(program)
        return WithEnv(inner, {"PGUSER": cu.p.inv.services.postgres.owner})

    return shell


def prepare_steps(cu: ComposeUpgrade) -> list[Step]:
    """The native SQL steps (replication role with a SCRAM verifier, slot WAL cap), run in
    the user's PostgreSQL container. The pg_hba step is left out: Patroni replaces
    pg_hba.conf with its generated rules when it takes the server over."""
    where = f"the {cu.compose(cu.primary).services.postgres or 'postgres'} container"
    return [in_container(s, pg_shell(cu, "postgres"), where)
            for s in prepare_primary_steps(cu.p) if not s.id.endswith(HBA_STEP)]


KEEP_AUTH_FILES = ('for f in pg_hba.conf pg_ident.conf; do [ -e "$1/$f.hapair-before" ] || '
                   'cp -p "$1/$f" "$1/$f.hapair-before"; done')


def pg_handover_step(cu: ComposeUpgrade) -> Step:
    host = cu.primary
    user_pg = cu.compose(host).services.postgres or "postgres"
    primary_url = cu.p.patroni(host).me.rest_url("/primary")
    data_dir = cu.p.inv.services.postgres.data_dir

    def hand_over(ctx: StepContext) -> None:
        rt = cu.runtime(ctx, host)
        # Patroni replaces pg_hba.conf and pg_ident.conf and keeps no copy: keep the
        # originals beside them for `hapair rollback` (never overwritten on a rerun)
        rt.shell("postgres").run(["sh", "-c", KEEP_AUTH_FILES, "sh", data_dir], user="postgres")
        rt.project("app").stop(user_pg)  # a clean shutdown: -t is never below 60 s
        rt.start("patroni")  # the same volume; Patroni starts it and takes the leader key
        steps_pg.wait_primary(primary_url, 120)

    def hand_back(ctx: StepContext) -> None:
        rt = cu.runtime(ctx, host)
        rt.remove("patroni")  # stops PostgreSQL with it (grace 120 s)
        rt.project("app").start(user_pg)

    return Step(id=sid(host, "patroni-handover"), host=host, kind=StepKind.RESTART,
                reason=f"the one PostgreSQL restart: {user_pg} stops cleanly, hapair-patroni "
                       f"starts the same data volume ({cu.pg_volume}) and takes the leader key",
                client_impact="the app's database calls fail from this stop until the app is "
                              "recreated behind the router (next steps); seconds",
                action=Fn(f"stop {user_pg}; up -d --no-deps hapair-patroni; wait for "
                          f"{primary_url}", hand_over),
                verify=all_checks("Patroni holds the primary", http_ok(primary_url),
                                  running(cu, "patroni")),
                undo=Undo(Fn(f"rm -s -f hapair-patroni; up -d {user_pg}", hand_back)),
                settle_timeout=30)


def _recreated(cu: ComposeUpgrade, node: str) -> list[str]:
    """The services the edit changes that start by default (not the retired, profiled ones)."""
    edit = cu.edits[node]
    services = load_plain(edit.after).get("services") or {}
    return sorted(s for s in edit.recreate
                  if isinstance(services.get(s), dict) and not services[s].get("profiles"))


def app_repoint_step(cu: ComposeUpgrade) -> Step:
    """node1's compose file as edited (app → hapair-router, data ports on the private
    address, PostgreSQL/Redis kept only under the `single-node` profile), and the containers
    it changes recreated. The original is kept beside it for rollback."""
    host = cu.primary
    edit = cu.edits[host]
    services = _recreated(cu, host)
    before = f"{edit.path}.hapair-before"

    def apply(ctx: StepContext) -> None:
        t = ctx.transport
        if not t.run(["test", "-e", before], check=False).ok:
            t.write_file(before, edit.before, mode=0o644)
        t.write_file(edit.path, edit.after, mode=0o644)
        app = cu.runtime(ctx, host).project("app")
        for service in services:
            app.start(service)  # up -d --no-deps: recreated when its definition changed

    def restore(ctx: StepContext) -> None:
        ctx.transport.write_file(edit.path, edit.before, mode=0o644)
        app = cu.runtime(ctx, host).project("app")
        for service in services:
            app.start(service)

    return Step(id=sid(host, "app-repoint"), host=host, kind=StepKind.RECREATE,
                reason=f"{edit.path} edited (diff in `plan`); recreated: "
                       f"{', '.join(services) or 'nothing'}",
                client_impact="each recreated container is down while it restarts (seconds)",
                action=Fn(f"write {edit.path} (original kept as {before}); up -d --no-deps "
                          f"{' '.join(services)}", apply),
                verify=all_checks("the app runs from the edited file",
                                  FileIsOneOf(edit.path, [edit.after], "the edited file"),
                                  *(running(cu, s, project="app", service=s) for s in services)),
                undo=Undo(Fn(f"put the original {edit.path} back; up -d --no-deps "
                             f"{' '.join(services)}", restore)),
                settle_timeout=120)


def standby_clone_step(cu: ComposeUpgrade) -> Step:
    return hapair_service_step(cu, cu.standby, "patroni", CLONE_REASON,
                               ready=standby_streaming(cu.p), settle=600, impact=CLONE_IMPACT)


def node2_app_step(cu: ComposeUpgrade) -> Step:
    host = cu.standby
    backend = cu.compose(host).services.backend
    checks = [running(cu, backend, project="app", service=backend)] if backend else []
    return Step(id=sid(host, "app"), host=host, kind=StepKind.NEW_SERVICE,
                reason=f"the app on {host} from its edited file (behind its own router; the "
                       "scheduler stays off here: one runs, on the primary's node)",
                client_impact="none: node2 serves once the front door sends it traffic",
                action=Fn(f"docker compose -p {cu.compose(host).project} up -d",
                          lambda ctx: cu.runtime(ctx, host).project("app").up_all()),
                verify=all_checks(f"the app runs on {host}", *checks),
                undo=Undo(Fn(f"docker compose -p {cu.compose(host).project} stop",
                             lambda ctx: cu.runtime(ctx, host).project("app").stop_all())),
                settle_timeout=180)


def etcd_shell(cu: ComposeUpgrade) -> ShellFor:
    """etcdctl where etcd runs: a compose host need not have etcdctl itself."""
    return lambda ctx: cu.runtime(ctx, ctx.host).shell("etcd")


def final_compose_steps(cu: ComposeUpgrade) -> list[Step]:
    """The native plan's durability and final checks; pg_stat_replication read in Patroni's
    container, etcd's leader moved with etcdctl in etcd's."""
    steps = [durability_step(cu.p)]
    for s in final_steps(cu.p):
        if s.id.endswith("verify.replication"):
            s = in_container(s, pg_shell(cu, "patroni"), "hapair-patroni")
        elif s.id.endswith("etcd.leader"):
            s = in_container(s, etcd_shell(cu), "hapair-etcd")
        steps.append(s)
    return steps
