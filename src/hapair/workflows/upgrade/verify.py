"""The final verification: the original guide's own expected results, checked for real.

- on the primary, pg_stat_replication shows the standby `streaming` (and `sync` in sync mode);
- Sentinel's master for the cache is the primary node, with the other Sentinels seen and
  CKQUORUM OK;
- both nodes' backends healthy and both load balancers answering;
- the front door answering.
`facts()` gathers them (for the report); `final_steps()` turns them into PROBE steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import redis

from hapair.components.redis.probe import ckquorum, get_master_addr, parse_master_addr
from hapair.exec.transport import Transport
from hapair.plan.step import Check, Step, StepContext, StepKind
from hapair.workflows.upgrade.params import SENTINEL_PORT, UpgradeParams
from hapair.workflows.upgrade.stepkit import guarded, psql_argv
from hapair.workflows.upgrade.steps_redis import client

PLAN = "upgrade"
REPLICATION_SQL = ("SELECT application_name, state, sync_state, "
                   "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication")


def replication_rows(t: Transport, database: str) -> list[dict[str, str]]:
    res = t.run(psql_argv(database), input=REPLICATION_SQL, user="postgres", timeout=30)
    rows = []
    for line in res.stdout.splitlines():
        name, state, sync, lag = (line.split("|") + ["", "", "", ""])[:4]
        rows.append({"standby": name, "state": state, "sync_state": sync, "replay_lag_bytes": lag})
    return rows


def sentinel_view(p: UpgradeParams) -> list[dict[str, Any]]:
    out = []
    for h in p.sentinel_hosts:
        row: dict[str, Any] = {"sentinel": h.name}
        try:
            with client(h.address, SENTINEL_PORT, p.sentinel_password) as c:
                addr = parse_master_addr(c.execute_command(
                    *get_master_addr(p.sentinel_master_name).words))
                row["master"] = f"{addr.host}:{addr.port}" if addr else None
                row["master_node"] = next((n.name for n in p.data_nodes
                                           if addr and n.address == addr.host), None)
                try:
                    row["ckquorum"] = str(c.execute_command(
                        *ckquorum(p.sentinel_master_name).words))
                except redis.ResponseError as exc:
                    row["ckquorum"] = str(exc)
                row["other_sentinels"] = len(c.execute_command(
                    "SENTINEL", "SENTINELS", p.sentinel_master_name))
        except (redis.RedisError, OSError) as exc:
            row["error"] = str(exc)
        out.append(row)
    return out


def http_status(url: str) -> int | str:
    try:
        return httpx.get(url, timeout=5, trust_env=False).status_code
    except httpx.HTTPError as exc:
        return f"error: {exc}"


def facts(p: UpgradeParams, transports: Mapping[str, Transport]) -> dict[str, Any]:
    s, door = p.inv.services, p.inv.front_door
    nodes = {}
    for n in p.data_nodes:
        nodes[n.name] = {
            "backend_health": http_status(f"http://{n.address}:{s.backend.port}{s.backend.health}"),
            "load_balancer": http_status(f"http://{n.address}:{door.port}{s.backend.health}"),
        }
    try:
        replication: list[dict[str, str]] | str = replication_rows(
            transports[p.names.primary], s.postgres.database)
    except Exception as exc:  # the report shows what failed instead of hiding it
        replication = f"error: {exc}"
    return {
        "primary": p.names.primary,
        "durability": p.inv.durability,
        "pg_stat_replication": replication,
        "sentinels": sentinel_view(p),
        "nodes": nodes,
        "front_door": {"url": f"http://{door.address}:{door.port}/",
                       "health": http_status(f"http://{door.address}:{door.port}"
                                             f"{s.backend.health}")},
        "media": media_totals(p),
    }


def media_totals(p: UpgradeParams) -> list[dict[str, Any]] | str:
    """Object counts and bytes on both sites (the upgrade report's media line)."""
    from hapair.workflows import storage as st

    try:
        setup, sites = st.setup_from_inventory(p.inv)
        return [{"site": t.site, "objects": t.total_objects, "bytes": sum(t.bytes.values())}
                for t in st.site_totals(setup, sites)]
    except Exception as exc:  # noqa: BLE001 — the report shows the failure
        return f"error: {exc}"


def final_steps(p: UpgradeParams) -> list[Step]:
    primary, standby = p.names.primary, p.names.standby
    want_sync = p.inv.durability in ("sync", "strict")

    def replication(ctx: StepContext) -> Check:
        rows = replication_rows(ctx.on(primary), p.inv.services.postgres.database)
        row = next((r for r in rows if r["standby"] == standby), None)
        if row is None:
            return Check(False, f"pg_stat_replication on {primary} has no {standby}")
        ok = row["state"] == "streaming" and (row["sync_state"] == "sync" or not want_sync)
        return Check(ok, f"pg_stat_replication on {primary}: {standby} {row['state']} "
                         f"{row['sync_state']}")

    def sentinels(_ctx: StepContext) -> Check:
        view = sentinel_view(p)
        bad = [v for v in view if v.get("master_node") != primary
               or not str(v.get("ckquorum", "")).startswith("OK")
               or v.get("other_sentinels") != len(view) - 1]
        return Check(not bad, f"{len(view) - len(bad)}/{len(view)} Sentinels name {primary} "
                              f"master with CKQUORUM OK and {len(view) - 1} peers")

    return [
        Step(id=f"{PLAN}/{primary}/verify.replication", host=primary, kind=StepKind.PROBE,
             reason="the guide's check: pg_stat_replication shows the standby streaming"
                    + (" and sync" if want_sync else ""),
             verify=guarded("standby streaming", replication), settle_timeout=30),
        Step(id=f"{PLAN}/{primary}/verify.sentinel", host=primary, kind=StepKind.PROBE,
             reason="the guide's check: Sentinel names the master; CKQUORUM OK everywhere",
             verify=guarded("Sentinel view", sentinels), settle_timeout=30),
    ]
