"""Rollback phase for the app and its media: objects only on the peer's site are copied to
the target's (rclone copy --checksum: adds, never deletes), the app gets its pre-upgrade env
file back (PostgreSQL, Redis and the local S3 site directly; one graceful gunicorn reload),
in two reloads: Redis and S3 direct before the PostgreSQL hand-back (PostgreSQL still behind
PgBouncer), PostgreSQL direct after it; a last copy takes what reached the peer meanwhile."""

from __future__ import annotations

from collections.abc import Callable

from hapair.components.storage.site import SITE_PROGRAM, Site
from hapair.exec.runtime import ServiceState
from hapair.plan.step import Check, Fn, Step, StepContext, StepKind
from hapair.workflows import storage as st
from hapair.workflows.context import WorkflowContext
from hapair.workflows.rollback import backup
from hapair.workflows.rollback.params import RollbackParams, sid
from hapair.workflows.upgrade.envfile import set_env
from hapair.workflows.upgrade.params import PGBOUNCER_PORT
from hapair.workflows.upgrade.stepkit import all_checks, guarded, http_ok
from hapair.workflows.upgrade.steps_app import _workers_newer_than

PRECOPY_YOUNG_S = 120.0  # uploads still land on the peer until the app is re-pointed


def _sites(rp: RollbackParams) -> tuple[st.StorageSetup, Site, Site]:
    setup, sites = st.setup_from_inventory(rp.up.inv)
    mine = next(s for s in sites if s.name == rp.target)
    peer = next(s for s in sites if s.name == rp.peer)
    return setup, mine, peer


def copy_step(rp: RollbackParams, name: str, reason: str, young_s: float = 0.0) -> Step:
    """rclone copy peer → target. `young_s`: objects younger than that may still be missing
    (uploads still arriving on the peer while the app writes there; a later copy takes them)."""
    t, peer = rp.target, rp.peer

    def copy(ctx: StepContext) -> None:
        setup, _mine, peer_site = _sites(rp)
        _setup, nodes = st.storage_nodes(WorkflowContext(rp.up.inv, dict(ctx.transports)))
        receiver = next(n for n in nodes if n.name == t)
        st.seed_site(setup, peer_site, receiver)  # rclone copy --checksum, run on the target

    def complete(ctx: StepContext) -> Check:
        if rp.runtime(ctx, peer).status(SITE_PROGRAM).state is ServiceState.ABSENT:
            return Check(True, f"{peer}'s site is retired (copied before it stopped)")
        setup, mine, peer_site = _sites(rp)
        gap = st.backlog(setup, peer_site, mine)
        age = gap.oldest_age_s or 0.0
        ok = not gap.missing or age <= young_s
        return Check(ok, f"{len(gap.missing)} objects of {peer}'s site missing on {t}'s"
                         + (f" (oldest {age:.0f} s)" if gap.missing else ""))

    return Step(id=sid(t, name), host=t, kind=StepKind.COMMAND, reason=reason,
                client_impact="none (the peer's site is read)",
                action=Fn(f"rclone copy --checksum {peer} → {t}, every bucket (never sync)",
                          copy),
                verify=guarded(f"{t}'s site has every object of {peer}'s", complete))


def _env_step(rp: RollbackParams, name: str, wanted: Callable[[StepContext], str],
              reason: str, what: str) -> Step:
    """Write the app's env file (a secret: compared, never shown) and reload gunicorn."""
    t, env = rp.target, rp.env_path

    def write(ctx: StepContext) -> None:
        tt = ctx.on(t)
        text = wanted(ctx)
        owner = tt.run(["stat", "-c", "%U", env]).stdout.strip()
        if tt.read_file(env).decode() != text:
            tt.run(["sh", "-c", '[ -f "$1.hapair-pair" ] || cp -p "$1" "$1.hapair-pair"', "sh",
                    env])
            tt.write_file(env, text, mode=0o600, owner=owner)
        # gunicorn HUP: new workers read the file, old ones finish their requests.
        tt.run(["supervisorctl", "-c", rp.supervisor_conf(t), "signal", "HUP", "backend"])

    def env_ok(ctx: StepContext) -> Check:
        same = ctx.on(t).read_file(env).decode() == wanted(ctx)
        return Check(same, f"{t}: {env} " + ("has" if same else "lacks") + f" {what}")

    node = rp.host(t)
    health = f"http://{node.address}:{rp.up.inv.services.backend.port}/health/liveness/"
    return Step(
        id=sid(t, name), host=t, kind=StepKind.RELOAD, reason=reason,
        client_impact="none: old workers finish their requests (gunicorn HUP)",
        action=Fn(f"write {env} ({what}); HUP backend", write),
        verify=all_checks(f"the app runs with {what}",
                          guarded("env file", env_ok),
                          guarded("workers reloaded", lambda ctx: _workers_newer_than(
                              ctx, rp.runtime_for, "backend", env)),
                          http_ok(health)),
        settle_timeout=60)


def _via_pgbouncer(ctx: StepContext, rp: RollbackParams) -> str:
    return set_env(backup.original_env(ctx, rp), {"POSTGRES_HOST": "127.0.0.1",
                                                  "POSTGRES_PORT": str(PGBOUNCER_PORT)})


def cache_media_steps(rp: RollbackParams) -> list[Step]:
    """Before the PostgreSQL hand-back: Redis and S3 direct (the routers for both depend on
    Sentinel and Patroni, which go away), PostgreSQL still through PgBouncer (its PAUSE hides
    the hand-back's restart)."""
    return [
        copy_step(rp, "media.precopy", "objects only on the peer's site are copied to the "
                                       "target's before the app reads its own site only",
                  young_s=PRECOPY_YOUNG_S),
        _env_step(rp, "app.direct-cache-media", lambda ctx: _via_pgbouncer(ctx, rp),
                  "the app reaches Redis and its own S3 site directly (pre-upgrade settings), "
                  "PostgreSQL still through PgBouncer", "Redis and S3 direct, PgBouncer"),
        copy_step(rp, "media.final-copy", "uploads that reached the peer's site before the "
                                          "app stopped writing there are copied too"),
    ]


def direct_steps(rp: RollbackParams) -> list[Step]:
    """After the hand-back: the pre-upgrade env file itself (PostgreSQL direct too)."""
    return [_env_step(rp, "app.direct", lambda ctx: backup.original_env(ctx, rp),
                      "the app reaches PostgreSQL, Redis and its own S3 site directly, as "
                      "before the upgrade (the pre-upgrade env file)",
                      "the pre-upgrade settings")]
