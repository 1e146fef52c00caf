"""etcd without its majority, the I/O half (components/etcd/recover.py has the why).

`force_one_member`: the survivor becomes a one-member cluster (one forced start, then its
normal config again). `reseed`: a member that is not in the live cluster is wiped (its data
directory moved aside, never deleted) and re-added as a learner, then promoted — etcd's
strict reconfiguration check refuses a voting member that would stall the quorum.
etcdctl runs where etcd runs (the host, or its container); the config files differ per
layout (etcd_files.py).
"""

from __future__ import annotations

import contextlib

from hapair.components.etcd.config import EtcdMember
from hapair.components.etcd.probe import (
    ETCDCTL_ENV,
    MemberInfo,
    endpoint_health_argv,
    member_list_argv,
    parse_endpoint_health,
    parse_member_list,
)
from hapair.components.etcd.recover import member_add_argv
from hapair.errors import CommandFailed
from hapair.exec.transport import Transport
from hapair.workflows.context import WorkflowContext
from hapair.workflows.ops.etcd_files import member_files
from hapair.workflows.ops.pair import wait_for
from hapair.workflows.upgrade.params import UpgradeParams


def members_seen(t: Transport, endpoint: str) -> tuple[MemberInfo, ...]:
    return parse_member_list(t.run(member_list_argv([endpoint]), timeout=20,
                                   env=ETCDCTL_ENV).stdout)


def _healthy(t: Transport, endpoint: str) -> tuple[bool, str]:
    res = t.run(endpoint_health_argv([endpoint]), check=False, timeout=20, env=ETCDCTL_ENV)
    health = parse_endpoint_health(res.stdout) if res.stdout.strip() else ()
    ok = bool(health) and health[0].healthy
    return ok, (health[0].error if health else res.stderr.strip()[-200:]) or "healthy"


def force_one_member(ctx: WorkflowContext, p: UpgradeParams, node: str) -> str:
    """`node`'s etcd member, with its data, as a one-member cluster. Only when no majority
    exists: with a majority this would split the DCS in two."""
    me = p.etcd(node).me
    runtime, files = ctx.runtime(node), member_files(ctx, p, node)
    t, tool = ctx.transports[node], ctx.shell(node, "etcd")
    runtime.stop("etcd")
    t.write_file(files.path, files.forced(), mode=files.mode)
    try:
        runtime.start("etcd")
        wait_for(f"{node}'s etcd as a one-member cluster", lambda: _healthy(tool, me.client_url),
                 60, 1.0)
    finally:
        # Never leave force-new-cluster in the file: a later restart would cut the members
        # re-added since.
        t.write_file(files.path, files.normal(), mode=files.mode)
    runtime.restart("etcd")
    wait_for(f"{node}'s etcd healthy after the forced start",
             lambda: _healthy(tool, me.client_url), 60, 1.0)
    names = [m.name or "(unstarted)" for m in members_seen(tool, me.client_url)]
    return f"etcd re-formed as a one-member cluster on {node} (members: {', '.join(names)})"


def stale_members(ctx: WorkflowContext, p: UpgradeParams, via: str) -> list[str]:
    """etcd hosts whose member is not a started voting member of the live cluster."""
    seen = members_seen(ctx.shell(via, "etcd"), p.etcd(via).me.client_url)
    good = {url for m in seen if m.name and not m.is_learner for url in m.peer_urls}
    stale = [m.name for m in p.etcd_members if m.peer_url not in good]
    return sorted(stale, key=lambda n: n != p.names.witness)  # the witness first


def reseed(ctx: WorkflowContext, p: UpgradeParams, host: str, via: str) -> str:
    """Wipe `host`'s etcd member (its old data kept aside) and add it again to the cluster
    `via` belongs to: as a learner first, promoted once it has caught up."""
    me: EtcdMember = p.etcd(host).me
    endpoint = p.etcd(via).me.client_url
    vt, t = ctx.shell(via, "etcd"), ctx.transports[host]
    runtime, tool = ctx.runtime(host), ctx.shell(host, "etcd")
    runtime.stop("etcd")
    files = member_files(ctx, p, host).with_fresh_data(t)
    _add_learner(vt, endpoint, me)
    current = members_seen(vt, endpoint)
    by_url = {m.peer_url: m for m in p.etcd_members}
    now = [by_url[u] for m in current for u in m.peer_urls if u in by_url]
    t.write_file(files.path, files.rejoining(now), mode=files.mode)
    runtime.start("etcd")
    mine = next(m for m in members_seen(vt, endpoint) if me.peer_url in m.peer_urls)
    if mine.is_learner:
        wait_for(f"{host}'s etcd learner promoted", lambda: _promote(vt, endpoint, mine), 60, 1.0)
    wait_for(f"{host}'s etcd member healthy", lambda: _healthy(tool, me.client_url), 60, 1.0)
    # Back to the normal file: it names every member; with data present etcd ignores the
    # initial-* keys, so this is what `hapair upgrade` would render too.
    t.write_file(files.path, files.normal(), mode=files.mode)
    return f"etcd member {host} wiped (old data kept aside) and re-added via {via}"


def _add_learner(vt: Transport, endpoint: str, me: EtcdMember) -> None:
    """`me` in the live cluster as a learner (unless it already is a member). etcd refuses a
    reconfiguration until its voting members have been connected for a few seconds
    ("unhealthy cluster" right after the previous member was promoted): retried, bounded."""
    def added() -> tuple[bool, str]:
        if any(me.peer_url in m.peer_urls for m in members_seen(vt, endpoint)):
            return True, "a member"
        vt.run(member_add_argv([endpoint], me, learner=True), timeout=30, env=ETCDCTL_ENV)
        return True, "added"

    wait_for(f"etcd member {me.name} added as a learner", added, 90, 2.0)


def _promote(t: Transport, endpoint: str, member: MemberInfo) -> tuple[bool, str]:
    """A learner is promoted only once it has caught up: etcd says so, we retry."""
    try:
        t.run(["etcdctl", f"--endpoints={endpoint}", "--dial-timeout=2s",
               "--command-timeout=5s", "member", "promote", f"{member.member_id:x}"],
              timeout=20, env=ETCDCTL_ENV)
    except CommandFailed as exc:
        return False, exc.stderr.strip()[-200:]
    return True, "promoted"


def reseed_reachable(ctx: WorkflowContext, p: UpgradeParams, via: str,
                     skip: tuple[str, ...] = ()) -> list[str]:
    """Re-add every stale member whose host answers; name the ones that could not be."""
    notes = []
    for host in stale_members(ctx, p, via):
        if host in skip:
            continue
        if not _reachable(ctx, host):
            notes.append(f"etcd member {host} is not reachable: it still holds the OLD cluster; "
                         f"`hapair rejoin` wipes and re-adds it once it answers")
            continue
        notes.append(reseed(ctx, p, host, via))
    return notes


def _reachable(ctx: WorkflowContext, host: str) -> bool:
    with contextlib.suppress(Exception):
        return ctx.transports[host].run(["true"], check=False, timeout=8).ok
    return False
