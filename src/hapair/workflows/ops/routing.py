"""Point every node's local router at the new primary/master NOW, through the HAProxy runtime
API (the router's admin socket: root, 0600), instead of waiting for `fall`/`rise` health-check
rounds. The checks keep running every second afterwards and would overturn a wrong verdict, so
they confirm the switch; where forcing did not take, we fall back to waiting for them.
Nodes are handled in parallel: every call here happens while clients wait behind a pause."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from hapair.components.router.stats import (
    parse_runtime_reply,
    route_commands,
    stats_commands_argv,
)
from hapair.workflows.context import WorkflowContext
from hapair.workflows.ops.pair import router_admin, router_backend_up, wait_for
from hapair.workflows.ops.timeline import Timeline
from hapair.workflows.upgrade.params import UpgradeParams

T = TypeVar("T")
CHECKS_FALLBACK_S = 30.0


def in_parallel(fn: Callable[[str], T], nodes: Sequence[str]) -> dict[str, T]:
    """fn(node) for every node at once; re-raises the first failure after all have ended."""
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        futures = {n: pool.submit(fn, n) for n in nodes}
    return {n: f.result() for n, f in futures.items()}


def route_now(ctx: WorkflowContext, p: UpgradeParams, node: str, frm: tuple[str, str],
              to: tuple[str, str]) -> tuple[bool, str]:
    """Force `node`'s router from (proxy, server) `frm` to `to`; (took effect, detail)."""
    transport, socket = router_admin(ctx, node)
    res = transport.run(stats_commands_argv(socket, route_commands(*frm, *to)), check=False,
                        timeout=10)
    errors, stats = parse_runtime_reply(res.stdout)
    if res.returncode != 0 or errors or not stats:
        return False, f"runtime API: {'; '.join(errors) or res.stderr.strip()[:200] or 'no answer'}"
    up_to = any(s.proxy == to[0] and s.server == to[1] and s.up for s in stats)
    up_from = any(s.proxy == frm[0] and s.server == frm[1] and s.up for s in stats)
    if up_to and not up_from:
        return True, f"{node}: router {to[0]} -> {to[1]} (forced, checks confirm)"
    return False, f"{node}: after forcing, {to[1]} up={up_to}, {frm[1]} up={up_from}"


def switch_routers(ctx: WorkflowContext, p: UpgradeParams, nodes: Sequence[str],
                   frm: tuple[str, str], to: tuple[str, str], tl: Timeline) -> list[str]:
    """Every node's router sends `to` traffic only (forced; health checks as the fallback).
    Marks `router_<node>_switched` on `tl`; returns one note per node."""

    def one(node: str) -> str:
        try:
            ok, detail = route_now(ctx, p, node, frm, to)
        except Exception as exc:  # noqa: BLE001 — any failure: the health checks will do it
            ok, detail = False, f"runtime API: {exc}"
        if not ok:
            wait_for(f"{node}'s router sends {to[0]} to {to[1]} only", lambda: (
                router_backend_up(ctx, node, *to) and not router_backend_up(ctx, node, *frm),
                "router check pending"), CHECKS_FALLBACK_S, 0.25)
            detail = f"{detail}; the health checks switched it"
        tl.mark(f"router_{node}_switched")
        return detail

    return list(in_parallel(one, nodes).values())
