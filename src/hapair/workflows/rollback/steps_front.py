"""Rollback phase for the front: the service address becomes the target's static address
again (keepalived stops on both nodes without the address ever leaving the target for more
than the instant between keepalived's exit and the re-add), nginx on the target gets the
single-node config back (graceful reload), and the peer stops serving HTTP."""

from __future__ import annotations

import time

from hapair.components.http_lb.config import nginx_test_argv
from hapair.errors import StepFailed
from hapair.exec.runtime import ServiceState
from hapair.plan.step import Check, Fn, FnCheck, Step, StepContext, StepKind
from hapair.workflows.rollback import backup
from hapair.workflows.rollback.model import (
    has_static_address,
    keepalive_off,
    with_static_address,
    without_static_address,
)
from hapair.workflows.rollback.params import RollbackParams, sid
from hapair.workflows.upgrade.stepkit import all_checks, guarded, http_ok, service_absent
from hapair.workflows.upgrade.steps_front import STATIC_ADDRESSES

KEEPALIVE_OFF = "keepalive_timeout 0;"
DRAIN_S = 2.0  # longer than a normal request: kept-alive connections are closed by then
VIP_GRACE_S = 3.0  # the peer keeps the address while the target's keepalived takes it


def _holders(ctx: StepContext, rp: RollbackParams) -> list[str]:
    return [n.name for n in rp.up.data_nodes
            if f" {rp.vip}/" in ctx.on(n.name).run(["ip", "-o", "addr", "show"],
                                                  check=False).stdout]


def vip_only_on(rp: RollbackParams, node: str) -> FnCheck:
    def check(ctx: StepContext) -> Check:
        holders = _holders(ctx, rp)
        return Check(holders == [node], f"{rp.vip} held by {holders or 'nobody'}")

    return guarded(f"{node} alone holds {rp.vip}", check)


def _read(ctx: StepContext, host: str, path: str) -> str:
    try:
        return ctx.on(host).read_file(path).decode()
    except FileNotFoundError:
        return ""


def front_steps(rp: RollbackParams) -> list[Step]:
    t, peer = rp.target, rp.peer

    def stop_peer_keepalived(ctx: StepContext) -> None:
        # Stopping a MASTER keepalived sends priority 0: the target's takes the VIP within
        # its skew time (~0.6 s) and announces it (gratuitous ARP). The peer keeps the address
        # for a grace period meanwhile, so nothing is sent into the void and the responses it
        # is still writing leave from the right address; then it lets it go.
        if peer in _holders(ctx, rp) and rp.runtime(ctx, t).status(
                "keepalived").state is not ServiceState.RUNNING:
            raise StepFailed(f"{peer} holds {rp.vip} but keepalived does not run on {t}: "
                             "nobody would take the address over; start it there first")
        script = ('held=0; ip -o addr show dev "$3" | grep -q " $2/" && held=1; '
                  'supervisorctl -c "$1" stop keepalived >/dev/null 2>&1; '
                  'if [ "$held" = 1 ]; then ip addr add "$2/32" dev "$3" 2>/dev/null; '
                  'sleep "$4"; ip addr del "$2/32" dev "$3" 2>/dev/null; fi; true')
        ctx.on(peer).run(["sh", "-c", script, "sh", rp.supervisor_conf(peer), rp.vip,
                          rp.interface, str(VIP_GRACE_S)], timeout=60)
        rp.runtime(ctx, peer).remove("keepalived")
        text = _read(ctx, peer, STATIC_ADDRESSES)
        if has_static_address(text, rp.vip):
            ctx.on(peer).write_file(STATIC_ADDRESSES, without_static_address(text, rp.vip),
                                    mode=0o644)

    def peer_static_clear(ctx: StepContext) -> Check:
        text = _read(ctx, peer, STATIC_ADDRESSES)
        ok = not has_static_address(text, rp.vip)
        return Check(ok, f"{peer}: {STATIC_ADDRESSES} " + ("does not claim" if ok else "claims")
                     + f" {rp.vip}")

    def make_static(ctx: StepContext) -> None:
        tt = ctx.on(t)
        text = _read(ctx, t, STATIC_ADDRESSES)
        tt.run(["install", "-d", "-m", "0755", STATIC_ADDRESSES.rsplit("/", 1)[0]])
        tt.write_file(STATIC_ADDRESSES, with_static_address(text, rp.vip), mode=0o644)
        # keepalived deletes the VIP when it exits: put it back in the same shell, so the
        # address is gone only for that instant (packets then are retransmitted, not reset).
        script = ('supervisorctl -c "$1" stop keepalived >/dev/null 2>&1; '
                  'ip -o addr show dev "$3" | grep -q " $2/" || ip addr add "$2/32" dev "$3"')
        tt.run(["sh", "-c", script, "sh", rp.supervisor_conf(t), rp.vip, rp.interface])
        rp.runtime(ctx, t).remove("keepalived")

    def target_static(ctx: StepContext) -> Check:
        ok = has_static_address(_read(ctx, t, STATIC_ADDRESSES), rp.vip)
        return Check(ok, f"{t}: {STATIC_ADDRESSES} " + ("has" if ok else "lacks") + f" {rp.vip}")

    nginx = backup.find(rp, rp.up.nginx(t).config_path)

    def single_nginx(ctx: StepContext) -> None:
        tt = ctx.on(t)
        backup.install(ctx, rp, nginx, keep_as=f"{nginx.dest}.hapair-pair")
        test = tt.run(nginx_test_argv(nginx.dest), check=False)
        if not test.ok:
            tt.run(["cp", "-p", f"{nginx.dest}.hapair-pair", nginx.dest])
            raise StepFailed(f"{t}: nginx -t rejected the single-node config: "
                             f"{test.stderr.strip()[-300:]}")
        tt.run(["supervisorctl", "-c", rp.supervisor_conf(t), "signal", "HUP", "nginx"])

    def nginx_single(ctx: StepContext) -> Check:
        same = _read(ctx, t, nginx.dest) == backup.restored(ctx, rp, nginx)
        return Check(same, f"{t}: {nginx.dest} " + ("is" if same else "is not")
                     + " the single-node config")

    health = f"{rp.front_url}{rp.up.inv.services.backend.health}"
    peer_nginx = rp.up.nginx(peer).config_path

    def drain(ctx: StepContext) -> None:
        pt = ctx.on(peer)
        text = _read(ctx, peer, peer_nginx)
        if KEEPALIVE_OFF not in text:
            pt.write_file(peer_nginx, keepalive_off(text, KEEPALIVE_OFF), mode=0o644)
        pt.run(["supervisorctl", "-c", rp.supervisor_conf(peer), "signal", "HUP", "nginx"])
        time.sleep(DRAIN_S)  # clients finish their current request and reconnect

    def drained(ctx: StepContext) -> Check:
        if rp.runtime(ctx, peer).status("nginx").state is ServiceState.ABSENT:
            return Check(True, f"{peer}: nginx already retired")
        ok = KEEPALIVE_OFF in _read(ctx, peer, peer_nginx)
        return Check(ok, f"{peer}: nginx " + ("closes" if ok else "keeps")
                     + " client connections after each response")

    steps = [
        Step(id=sid(peer, "nginx.drain"), host=peer, kind=StepKind.RELOAD,
             reason=f"{peer}'s nginx closes each client connection after its response, so no "
                    "idle keep-alive connection is reset when the address moves",
             client_impact="none: a graceful reload; clients reconnect for their next request",
             action=Fn(f"{peer_nginx}: {KEEPALIVE_OFF} HUP nginx; wait {DRAIN_S:g} s", drain),
             verify=guarded("keep-alive off on the peer", drained)),
        Step(id=sid(peer, "keepalived.stopped"), host=peer, kind=StepKind.COMMAND,
             reason=f"{peer} gives the service address up for good (keepalived stopped; the "
                    f"target's keepalived takes the address if {peer} held it)",
             client_impact="none: a VRRP hand-over with gratuitous ARP, if any",
             action=Fn(f"stop and remove keepalived on {peer}; no static {rp.vip} there",
                       stop_peer_keepalived),
             verify=all_checks(f"keepalived gone from {peer}, {t} holds {rp.vip}",
                               service_absent(rp.runtime_for, "keepalived"),
                               guarded("no static address on the peer", peer_static_clear),
                               vip_only_on(rp, t)),
             settle_timeout=20),
        Step(id=sid(t, "front-door.static"), host=t, kind=StepKind.COMMAND,
             reason=f"{rp.vip} becomes {t}'s static address again ({STATIC_ADDRESSES}) and "
                    "keepalived stops; the address stays on the node",
             client_impact="none: the address is re-added in the same instant keepalived "
                           "drops it",
             action=Fn(f"{STATIC_ADDRESSES} += {rp.vip}/32; stop keepalived; ip addr add "
                       f"{rp.vip}/32 dev {rp.interface}; remove keepalived", make_static),
             verify=all_checks(f"{t} holds {rp.vip} statically",
                               guarded("static entry", target_static),
                               service_absent(rp.runtime_for, "keepalived"),
                               vip_only_on(rp, t)),
             settle_timeout=10),
        Step(id=sid(t, "nginx.single"), host=t, kind=StepKind.RELOAD,
             reason="nginx on the single server sends every request to its own backend and "
                    "frontend again (the pre-upgrade config, checked with nginx -t)",
             client_impact="none: nginx reloads gracefully; requests in flight to the peer "
                           "finish",
             action=Fn(f"restore {nginx.dest} from the upgrade's backup; nginx -t; HUP nginx",
                       single_nginx),
             verify=all_checks("single-node nginx serves the front door",
                               guarded("nginx config", nginx_single), http_ok(health)),
             settle_timeout=20),
    ]
    return steps + [_retire(rp, peer, program) for program in ("nginx", "backend", "frontend")]


def _retire(rp: RollbackParams, host: str, program: str) -> Step:
    def remove(ctx: StepContext) -> None:
        rp.runtime(ctx, host).remove(program)

    return Step(id=sid(host, f"{program}.stopped"), host=host, kind=StepKind.COMMAND,
                reason=f"{host} serves no HTTP any more (definitions removed, files kept)",
                action=Fn(f"stop and remove `{program}`", remove),
                verify=service_absent(rp.runtime_for, program))
