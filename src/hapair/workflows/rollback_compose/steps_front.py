"""Compose rollback, first phase: the target's Redis is (or becomes, by Sentinel's lossless
switchover) the master; with a VIP front door keepalived stops on both nodes while the address
stays on the target (the peer hands it over first; the target re-adds it in the same shell
that stops its keepalived, as the native rollback does); then the peer's app stops, so from
here on only the target serves."""

from __future__ import annotations

from hapair.errors import StepFailed
from hapair.plan.step import Check, Fn, FnCheck, Step, StepContext, StepKind
from hapair.workflows.context import WorkflowContext
from hapair.workflows.ops.pair import sentinel_master
from hapair.workflows.ops.switchover import redis_switchover
from hapair.workflows.rollback.model import (
    has_static_address,
    with_static_address,
    without_static_address,
)
from hapair.workflows.rollback_compose.model import sid
from hapair.workflows.rollback_compose.setup import ComposeRollback, containers, none_running
from hapair.workflows.upgrade.stepkit import all_checks, guarded
from hapair.workflows.upgrade.steps_front import STATIC_ADDRESSES

VIP_GRACE_S = 3.0  # the peer keeps the address while the target's keepalived takes it
KEEPALIVED = "hapair-keepalived"


def master_step(cr: ComposeRollback) -> Step:
    t = cr.target

    def is_master(ctx: StepContext) -> Check:
        if not containers(ctx, t, cr.hapair_project(t), "hapair-redis"):
            # a resumed rollback past the hand-back: the user's Redis has the data now
            return Check(True, f"{t}: hapair-redis no longer runs (handed back)")
        role = cr.redis_role(ctx, "hapair")
        return Check(role == "master", f"{t}: hapair-redis role {role}")

    def move(ctx: StepContext) -> None:
        if sentinel_master(cr.p) not in (None, t):
            wctx = WorkflowContext(cr.p.inv, dict(ctx.transports))
            redis_switchover(wctx, cr.p, to=t)  # writes paused, replica caught up: lossless

    return Step(id=sid(t, "redis-master"), host=t, kind=StepKind.COMMAND,
                reason=f"the single server's Redis must hold the latest cache and sessions: a "
                       f"lossless Sentinel switchover to {t} if it is not the master",
                client_impact="Redis writes wait a few seconds, only if a switchover is needed",
                action=Fn(f"Sentinel switchover of the Redis master to {t} (if needed)", move),
                verify=guarded(f"{t} holds the Redis master", is_master), settle_timeout=30)


# --- the front door (VIP only) ------------------------------------------------------------------


def _iface(cr: ComposeRollback) -> str:
    return cr.p.inv.front_door.interface or "eth0"


def _holders(ctx: StepContext, cr: ComposeRollback) -> list[str]:
    vip = cr.p.inv.front_door.address
    return [n for n in (cr.target, cr.peer)
            if f" {vip}/" in ctx.on(n).run(["ip", "-o", "addr", "show"], check=False).stdout]


def _read(ctx: StepContext, host: str, path: str) -> str:
    try:
        return ctx.on(host).read_file(path).decode()
    except FileNotFoundError:
        return ""


def _stop_argv(cr: ComposeRollback, ctx: StepContext, host: str) -> list[str]:
    return cr.runtime(ctx, host).project("hapair").argv("stop", "-t", "60", KEEPALIVED)


def keepalived_steps(cr: ComposeRollback) -> list[Step]:
    t, peer, vip, iface = cr.target, cr.peer, cr.p.inv.front_door.address, _iface(cr)

    def stop_peer(ctx: StepContext) -> None:
        # A MASTER keepalived that stops sends priority 0: the target's takes the address
        # within its skew time and announces it; the peer keeps it a grace period meanwhile.
        if peer in _holders(ctx, cr) and not containers(ctx, t, cr.hapair_project(t),
                                                        KEEPALIVED):
            raise StepFailed(f"{peer} holds {vip} but keepalived does not run on {t}: nobody "
                             "would take the address over; start it there first")
        script = ('v="$1"; i="$2"; g="$3"; shift 3; held=0; '
                  'ip -o addr show dev "$i" | grep -q " $v/" && held=1; "$@" >/dev/null 2>&1; '
                  'if [ "$held" = 1 ]; then ip addr add "$v/32" dev "$i" 2>/dev/null; '
                  'sleep "$g"; ip addr del "$v/32" dev "$i" 2>/dev/null; fi; true')
        ctx.on(peer).run(["sh", "-c", script, "sh", vip, iface, f"{VIP_GRACE_S:g}",
                          *_stop_argv(cr, ctx, peer)], timeout=120)
        text = _read(ctx, peer, STATIC_ADDRESSES)
        if has_static_address(text, vip):
            ctx.on(peer).write_file(STATIC_ADDRESSES, without_static_address(text, vip),
                                    mode=0o644)

    def make_static(ctx: StepContext) -> None:
        tt = ctx.transport
        tt.run(["install", "-d", "-m", "0755", STATIC_ADDRESSES.rsplit("/", 1)[0]])
        tt.write_file(STATIC_ADDRESSES, with_static_address(_read(ctx, t, STATIC_ADDRESSES),
                                                            vip), mode=0o644)
        # keepalived deletes the address when it exits: re-added in the same shell, so it is
        # gone only for that instant (packets then are retransmitted, not reset)
        script = ('v="$1"; i="$2"; shift 2; "$@" >/dev/null 2>&1; '
                  'ip -o addr show dev "$i" | grep -q " $v/" || ip addr add "$v/32" dev "$i"')
        tt.run(["sh", "-c", script, "sh", vip, iface, *_stop_argv(cr, ctx, t)], timeout=120)

    def only_target(ctx: StepContext) -> Check:
        holders = _holders(ctx, cr)
        return Check(holders == [t], f"{vip} held by {holders or 'nobody'}")

    def stopped(host: str) -> FnCheck:
        return guarded(f"keepalived stopped on {host}", lambda ctx: none_running(
            ctx, host, cr.hapair_project(host), KEEPALIVED, what="hapair-keepalived"))

    def peer_static_clear(ctx: StepContext) -> Check:
        ok = not has_static_address(_read(ctx, peer, STATIC_ADDRESSES), vip)
        return Check(ok, f"{peer}: {STATIC_ADDRESSES} " + ("does not claim" if ok else "claims")
                     + f" {vip}")

    def target_static(ctx: StepContext) -> Check:
        ok = has_static_address(_read(ctx, t, STATIC_ADDRESSES), vip)
        return Check(ok, f"{t}: {STATIC_ADDRESSES} " + ("has" if ok else "lacks") + f" {vip}")

    return [
        Step(id=sid(peer, "keepalived-stopped"), host=peer, kind=StepKind.COMMAND,
             reason=f"{peer} gives the service address up for good (its keepalived stops; "
                    f"the target's takes the address if {peer} held it)",
             client_impact="none: a VRRP hand-over with gratuitous ARP, if any",
             action=Fn(f"stop hapair-keepalived on {peer} (the address kept "
                       f"{VIP_GRACE_S:g} s if it held it); no static {vip} there", stop_peer),
             verify=all_checks(f"keepalived stopped on {peer}, {t} alone holds {vip}",
                               stopped(peer), guarded("no static address on the peer",
                                                      peer_static_clear),
                               guarded(f"{t} alone holds {vip}", only_target)),
             settle_timeout=20),
        Step(id=sid(t, "front-door-static"), host=t, kind=StepKind.COMMAND,
             reason=f"{vip} becomes {t}'s static address ({STATIC_ADDRESSES}) and its "
                    "keepalived stops; the address stays on the node",
             client_impact="none: the address is re-added in the same instant keepalived "
                           "drops it",
             action=Fn(f"{STATIC_ADDRESSES} += {vip}/32; stop hapair-keepalived; ip addr add "
                       f"{vip}/32 dev {iface}", make_static),
             verify=all_checks(f"{t} holds {vip} statically", stopped(t),
                               guarded("static entry", target_static),
                               guarded(f"{t} alone holds {vip}", only_target)),
             settle_timeout=10),
    ]


def peer_app_step(cr: ComposeRollback) -> Step:
    peer = cr.peer
    project = cr.compose(peer).project
    return Step(id=sid(peer, "app-stopped"), host=peer, kind=StepKind.COMMAND,
                reason=f"{peer}'s app stops: only {cr.target} serves from here on (its "
                       "containers are removed once hapair's router has left their network)",
                client_impact="none: the front door sends nothing to it",
                action=Fn(f"docker compose -p {project} stop",
                          lambda ctx: cr.runtime(ctx, peer).project("app").stop_all()),
                verify=guarded(f"no container of {project} runs on {peer}", lambda ctx:
                               none_running(ctx, peer, project, what=f"project {project}")))
