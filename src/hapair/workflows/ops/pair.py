"""Facts and waits shared by the day-2 operations: who leads, is the standby in sync, does
each node's router send PostgreSQL/Redis to the right node. Every wait is bounded."""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable
from typing import Any

import httpx
import redis

from hapair.components.patroni.probe import Member, parse_cluster
from hapair.components.redis.probe import get_master_addr, parse_master_addr
from hapair.components.router.stats import parse_show_stat, show_stat_argv
from hapair.compose.generate import router_run_dir
from hapair.compose.host_runtime import bundle_dir
from hapair.errors import Refused, StepFailed
from hapair.exec.transport import Transport
from hapair.inventory import Host
from hapair.workflows.context import WorkflowContext
from hapair.workflows.upgrade.params import SENTINEL_PORT, UpgradeParams
from hapair.workflows.upgrade.steps_pg import pgbouncer_admin
from hapair.workflows.upgrade.steps_redis import client


def cluster(p: UpgradeParams, exclude: tuple[str, ...] = (),
            prefer: str | None = None) -> list[Member]:
    """Patroni's view of the cluster (GET /cluster), from the first node that answers
    (`prefer` asked first: each Patroni answers from its own view, one HA loop old at most)."""
    last = "no node answered"
    for node in sorted(p.data_nodes, key=lambda n: n.name != prefer):
        if node.name in exclude:
            continue
        try:
            text = httpx.get(f"http://{node.address}:8008/cluster", timeout=3,
                             trust_env=False).text
            return list(parse_cluster(text).members)
        except (httpx.HTTPError, StepFailed) as exc:
            last = f"{node.name}: {exc}"
    raise Refused(f"Patroni cluster view unavailable: {last}")


def leader(members: list[Member]) -> str | None:
    return next((m.name for m in members if m.role in ("leader", "standby_leader")), None)


def wait_for(what: str, fn: Callable[[], tuple[bool, str]], timeout: float,
             interval: float = 0.5) -> str:
    deadline = time.monotonic() + timeout
    detail = "not checked"
    while True:
        try:
            ok, detail = fn()
        except (httpx.HTTPError, redis.RedisError, OSError, Refused, StepFailed) as exc:
            ok, detail = False, str(exc)
        if ok:
            return detail
        if time.monotonic() >= deadline:
            raise StepFailed(f"{what}: not reached within {timeout:g} s ({detail})")
        time.sleep(interval)


ROUTER_SOCKET = "/run/haproxy/hapair-router.sock"


def router_admin(ctx: WorkflowContext, node: str) -> tuple[Transport, str]:
    """Where `node`'s router admin socket is talked to (with python3): on the host itself. On
    a compose host that is the host side of the router container's /run/haproxy (a bind
    mount, compose/generate.py: the HAProxy image has no client for its socket)."""
    return ctx.transports[node], router_admin_socket(ctx.inventory.host(node))


def router_admin_socket(host: Host) -> str:
    """The host path of a node's router admin socket: the native router's, or on compose the
    host side of the router container's /run/haproxy (a bind mount, compose/generate.py)."""
    if host.compose is None:
        return ROUTER_SOCKET
    return f"{router_run_dir(bundle_dir(host))}/{posixpath.basename(ROUTER_SOCKET)}"


def router_backend_up(ctx: WorkflowContext, node: str, proxy: str, server: str) -> bool:
    """Does `node`'s local router have `server` UP in `proxy` (e.g. pg_primary)?"""
    transport, socket = router_admin(ctx, node)
    out = transport.run(show_stat_argv(socket), check=False, timeout=10).stdout
    return any(s.proxy == proxy and s.server == server and s.up for s in parse_show_stat(out))


def pause_pgbouncers(ctx: WorkflowContext, p: UpgradeParams, nodes: list[str]) -> None:
    db = p.inv.services.postgres.database
    for n in nodes:
        pgbouncer_admin(_ctx(ctx, n), f"PAUSE {db}")


def resume_pgbouncers(ctx: WorkflowContext, p: UpgradeParams, nodes: list[str]) -> list[str]:
    """RESUME everywhere possible; return the nodes where it failed (never raise: clients
    held behind PAUSE must be released on every node that can be reached)."""
    db, failed = p.inv.services.postgres.database, []
    for n in nodes:
        try:
            pgbouncer_admin(_ctx(ctx, n), f"RESUME {db}")
        except Exception:  # noqa: BLE001 — report, keep resuming the others
            failed.append(n)
    return failed


class _StepCtx:
    """The small part of a StepContext that pgbouncer_admin needs."""

    def __init__(self, ctx: WorkflowContext, host: str) -> None:
        self.transport = ctx.transports[host]
        self.host = host


def _ctx(ctx: WorkflowContext, host: str) -> Any:
    return _StepCtx(ctx, host)


def sentinel_master(p: UpgradeParams, exclude: tuple[str, ...] = ()) -> str | None:
    """The node the Sentinels name master (asked of the first Sentinel that answers)."""
    for h in p.sentinel_hosts:
        if h.name in exclude:
            continue
        try:
            with client(h.address, SENTINEL_PORT, p.sentinel_password) as c:
                addr = parse_master_addr(c.execute_command(
                    *get_master_addr(p.sentinel_master_name).words))
        except (redis.RedisError, OSError):
            continue
        return next((n.name for n in p.data_nodes if addr and n.address == addr.host), None)
    return None
