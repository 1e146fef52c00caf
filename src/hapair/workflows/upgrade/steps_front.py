"""Upgrade phases for the front: HTTP load balancing on both nodes, then the front door as a
keepalived VIP on the address users already reach (the single server's service address)."""

from __future__ import annotations

from collections.abc import Callable

from hapair.components.common import RenderedFile
from hapair.components.http_lb.config import nginx_test_argv, render_nginx_config
from hapair.components.keepalived import (
    keepalived_argv,
    render_check_scripts,
    render_keepalived_config,
)
from hapair.exec.runtime import ServiceSpec
from hapair.plan.step import (
    Check,
    CommandCheck,
    Fn,
    FnCheck,
    Run,
    Step,
    StepContext,
    StepKind,
    Undo,
)
from hapair.workflows.upgrade.params import UpgradeParams
from hapair.workflows.upgrade.stepkit import (
    FileIsOneOf,
    RuntimeFor,
    all_checks,
    file_step,
    guarded,
    http_ok,
    service_step,
)

PLAN = "upgrade"
SYSCTL_FILE = "/etc/sysctl.d/60-hapair-vip.conf"
SYSCTL_LINE = "net.ipv4.ip_nonlocal_bind = 1\n"
# The lab's (and a cloud image's) record of addresses configured at boot: once the VIP is
# keepalived's, the old static entry must go, or a rebooted node1 would claim it too.
STATIC_ADDRESSES = "/etc/hapair/static-addresses"


def sid(host: str, name: str) -> str:
    return f"{PLAN}/{host}/{name}"


def _nonlocal_bind_step(host: str) -> Step:
    return Step(
        id=sid(host, "sysctl.nonlocal-bind"), host=host, kind=StepKind.COMMAND,
        reason="nginx listens on the VIP even on the node that does not hold it yet "
               "(net.ipv4.ip_nonlocal_bind), so a VIP move needs no reload",
        action=Run(["sh", "-c", 'printf "%s" "$1" > "$2" && sysctl -qw '
                    'net.ipv4.ip_nonlocal_bind=1', "sh", SYSCTL_LINE, SYSCTL_FILE]),
        verify=CommandCheck(["sh", "-c", '[ "$(sysctl -n net.ipv4.ip_nonlocal_bind)" = 1 ] '
                             '&& [ -f "$1" ]', "sh", SYSCTL_FILE],
                            description="net.ipv4.ip_nonlocal_bind = 1 (persisted)"))


def lb_steps(p: UpgradeParams, runtime_for: RuntimeFor) -> list[Step]:
    steps: list[Step] = []
    primary, standby = p.host(p.names.primary), p.host(p.names.standby)
    health = p.inv.services.backend.health
    for node in (primary, standby):
        steps.append(_nonlocal_bind_step(node.name))
        conf = render_nginx_config(p.nginx(node.name))
        node_url = f"http://{node.address}:{p.inv.front_door.port}{health}"
        if node.name == primary.name:
            # The running nginx: new config checked with `nginx -t`, then a graceful reload.
            def reload(ctx: StepContext, c=conf) -> None:
                t = ctx.transport
                t.run(["cp", "-p", c.path, f"{c.path}.hapair-before"])
                t.write_file(c.path, c.content, mode=0o644)
                test = t.run(nginx_test_argv(c.path), check=False)
                if not test.ok:
                    t.run(["cp", "-p", f"{c.path}.hapair-before", c.path])
                    raise_failed(ctx.host, test.stderr)
                sup = p.host(ctx.host).supervisor
                t.run(["supervisorctl", "-c", sup.config if sup else
                       "/etc/supervisor/supervisord.conf", "signal", "HUP", "nginx"])

            steps.append(Step(
                id=sid(node.name, "nginx.balance"), host=node.name, kind=StepKind.RELOAD,
                reason="nginx balances over both nodes' backends and frontends (route table "
                       "from the inventory, no ip_hash, passive checks, idempotent retries)",
                client_impact="none: nginx reloads gracefully",
                action=Fn(f"write {conf.path}; nginx -t; HUP nginx", reload),
                verify=all_checks("nginx serves the balanced config",
                                  FileIsOneOf(conf.path, [conf.content]), http_ok(node_url)),
                undo=Undo(Run(["sh", "-c", 'cp -p "$1.hapair-before" "$1" && supervisorctl '
                               'signal HUP nginx', "sh", conf.path])),
                settle_timeout=20))
        else:
            steps.append(file_step(sid(node.name, "nginx.config"), node.name, conf,
                                   "nginx on node2 with the same balanced config"))
            spec = ServiceSpec(name="nginx", command=("/usr/sbin/nginx", "-c", conf.path, "-g",
                                                      "daemon off;"),
                               stop_signal="QUIT", stop_wait_secs=30, priority=500)
            steps.append(service_step(sid(node.name, "nginx.service"), node.name, spec,
                                      runtime_for, "node2's HTTP load balancer",
                                      ready=http_ok(node_url), settle=30))
    return steps


def raise_failed(host: str, stderr: str) -> None:
    from hapair.errors import StepFailed

    raise StepFailed(f"{host}: nginx -t rejected the new config: {stderr.strip()[-300:]}")


def vip_steps(p: UpgradeParams, runtime_for: RuntimeFor) -> list[Step]:
    door = p.inv.front_door
    primary, standby = p.names.primary, p.names.standby
    steps: list[Step] = []
    for name in (primary, standby):
        params = p.keepalived(name)
        final = render_keepalived_config(params)
        takeover = render_keepalived_config(params, takeover=True)
        first = takeover if name == primary else final
        eligible, http = render_check_scripts(params)
        steps.append(Step(
            id=sid(name, "keepalived.files"), host=name, kind=StepKind.FILE,
            reason="keepalived: unicast VRRP, nopreempt, gives the VIP up when the node is "
                   "isolated or its load balancer is down",
            action=Fn(f"write {final.path} (0600) and its check scripts",
                      _write_files((eligible, http, first))),
            verify=all_checks("keepalived files in place",
                              FileIsOneOf(eligible.path, [eligible.content]),
                              FileIsOneOf(http.path, [http.content]),
                              FileIsOneOf(final.path, [first.content, final.content])),
            undo=Undo(Run(["rm", "-f", final.path, eligible.path, http.path]))))
        spec = ServiceSpec(name="keepalived",
                           command=tuple(keepalived_argv(params, "/usr/sbin/keepalived")),
                           stop_wait_secs=10, priority=600)
        steps.append(service_step(
            sid(name, "keepalived.service"), name, spec, runtime_for,
            f"the front door VIP follows the healthy node ({primary}, which already holds "
            f"{door.address}, takes it over as MASTER without dropping it)",
            ready=_vip_only_on(p, primary), settle=30))
        if name != primary:
            continue
        steps.append(Step(
            id=sid(name, "keepalived.nopreempt"), host=name, kind=StepKind.RELOAD,
            reason="back to the normal config (BACKUP + nopreempt) with a reload: the running "
                   "MASTER keeps the VIP; after a failover the VIP will not flap back",
            action=Fn(f"write {final.path}; HUP keepalived", _reload_keepalived(p, name, final)),
            verify=all_checks("normal keepalived config, VIP held",
                              FileIsOneOf(final.path, [final.content]),
                              _vip_only_on(p, primary)),
            settle_timeout=15))
        steps.append(Step(
            id=sid(name, "front-door.static-released"), host=name, kind=StepKind.FILE,
            reason=f"{door.address} is now keepalived's: drop it from node1's boot-time "
                   "address config so a reboot cannot claim it twice",
            action=Run(["sh", "-c", '[ ! -f "$1" ] || sed -i "/^$2\\//d" "$1"', "sh",
                        STATIC_ADDRESSES, door.address.replace(".", "\\.")]),
            verify=guarded("no static entry for the VIP", lambda ctx: Check(
                ctx.transport.run(["sh", "-c", '! grep -qs "^$2/" "$1"', "sh",
                                   STATIC_ADDRESSES, door.address], check=False).ok,
                f"{ctx.host}: {STATIC_ADDRESSES} has no {door.address}"))))
    steps.append(Step(
        id=sid(primary, "front-door"), host=primary, kind=StepKind.PROBE,
        reason="the address users reach answers through the balanced pair",
        verify=http_ok(f"http://{door.address}:{door.port}{p.inv.services.backend.health}"),
        settle_timeout=20))
    return steps


def _reload_keepalived(p: UpgradeParams, host: str,
                       final: RenderedFile) -> Callable[[StepContext], None]:
    def run(ctx: StepContext) -> None:
        ctx.transport.write_file(final.path, final.content, mode=final.mode, owner=final.owner)
        sup = p.host(host).supervisor
        ctx.transport.run(["supervisorctl", "-c", sup.config if sup else
                           "/etc/supervisor/supervisord.conf", "signal", "HUP", "keepalived"])

    return run


def _write_files(files: tuple[RenderedFile, ...]) -> Callable[[StepContext], None]:
    def write(ctx: StepContext) -> None:
        for f in files:
            ctx.transport.run(["install", "-d", "-m", "0755", f.path.rsplit("/", 1)[0]])
            ctx.transport.write_file(f.path, f.content, mode=f.mode, owner=f.owner)

    return write


def _vip_only_on(p: UpgradeParams, holder: str) -> FnCheck:
    """The VIP is on `holder` and on no other data node (never twice)."""
    door = p.inv.front_door

    def check(ctx: StepContext) -> Check:
        holders = [n.name for n in p.data_nodes
                   if f" {door.address}/" in ctx.on(n.name).run(["ip", "-o", "addr", "show"],
                                                                check=False).stdout]
        return Check(holders == [holder], f"{door.address} held by {holders or 'nobody'}")

    return guarded(f"{holder} alone holds the VIP", check)
