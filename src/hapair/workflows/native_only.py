"""Workflows whose steps still drive the native layout only (supervisord programs, the host's
own PostgreSQL, Redis and nginx files). On an inventory with compose hosts they refuse before
touching anything, naming the hosts, instead of failing halfway (docs/compose.md, "What runs
on compose hosts")."""

from __future__ import annotations

from hapair.inventory import Inventory

WHY = ("its steps work on the native layout (supervisord programs, the host's own PostgreSQL, "
       "Redis and nginx) and have no compose form yet")


def compose_hosts(inv: Inventory) -> list[str]:
    return [h.name for h in inv.hosts if h.runtime == "compose"]


def native_only_refusal(inv: Inventory, what: str) -> str | None:
    """Why `what` (e.g. "`hapair upgrade`") refuses this inventory, or None when every host
    is native."""
    hosts = compose_hosts(inv)
    if not hosts:
        return None
    return (f"{what} is not available on compose hosts ({', '.join(hosts)}): {WHY}; "
            "see docs/compose.md")
