"""The final verification: the original guide's own expected results, checked for real.

- on the primary, pg_stat_replication shows the standby `streaming` (and `sync` in sync mode);
- Sentinel's master for the cache is the primary node, with the other Sentinels seen and
  CKQUORUM OK;
- both nodes' backends healthy and both load balancers answering;
- the front door answering.
`facts()` gathers them (for the report); `final_steps()` turns them into PROBE steps.
The probes are observe's (hapair.observe.probes): the one-query PostgreSQL status, one
Sentinel's view of the master, an HTTP health answer — what `status` and `check` read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import redis

from hapair.errors import HapairError
from hapair.exec.transport import Transport
from hapair.observe import probes
from hapair.observe.snapshot import ReplicationRow, SentinelState
from hapair.plan.step import Check, Step, StepContext, StepKind
from hapair.workflows.upgrade.params import SENTINEL_PORT, UpgradeParams
from hapair.workflows.upgrade.stepkit import guarded, psql_argv
from hapair.workflows.upgrade.steps_redis import client

PLAN = "upgrade"
HTTP_TIMEOUT = 5.0


def replication(t: Transport, database: str) -> tuple[ReplicationRow, ...]:
    """pg_stat_replication on the node, through observe's one-query PostgreSQL probe."""
    res = t.run(psql_argv(database), input=probes.PG_STATUS_SQL, user="postgres", timeout=30)
    return probes.parse_pg_status(res.stdout).replication


def replication_rows(t: Transport, database: str) -> list[dict[str, Any]]:
    """The report's rows (the keys the upgrade report has always shown)."""
    return [{"standby": r.application_name, "state": r.state, "sync_state": r.sync_state,
             "replay_lag_bytes": r.lag_bytes} for r in replication(t, database)]


def sentinel_states(p: UpgradeParams) -> dict[str, SentinelState | str]:
    """Each Sentinel's view (observe's probe), or why it could not be asked."""
    def node_of(address: str | None) -> str | None:
        return next((n.name for n in p.data_nodes if n.address == address), None)

    out: dict[str, SentinelState | str] = {}
    for h in p.sentinel_hosts:
        try:
            with client(h.address, SENTINEL_PORT, p.sentinel_password) as c:
                out[h.name] = probes.sentinel_state(c.execute_command, p.sentinel_master_name,
                                                    node_of)
        except (redis.RedisError, OSError, HapairError) as exc:  # unreachable, odd reply
            out[h.name] = str(exc) or type(exc).__name__
    return out


def sentinel_view(p: UpgradeParams) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, v in sentinel_states(p).items():
        if isinstance(v, str):
            rows.append({"sentinel": name, "error": v})
        else:
            rows.append({"sentinel": name, "master": v.master, "master_node": v.master_node,
                         "ckquorum": v.message, "other_sentinels": v.other_sentinels})
    return rows


def _get(url: str, timeout: float) -> tuple[int, str]:
    r = httpx.get(url, timeout=timeout, trust_env=False)
    return r.status_code, ""


def http_status(url: str) -> int | str:
    result = probes.http_result(_get, "health", url, HTTP_TIMEOUT)
    return result.status if result.status is not None else f"error: {result.error}"


def facts(p: UpgradeParams, transports: Mapping[str, Transport]) -> dict[str, Any]:
    s, door = p.inv.services, p.inv.front_door
    nodes = {}
    for n in p.data_nodes:
        nodes[n.name] = {
            "backend_health": http_status(f"http://{n.address}:{s.backend.port}{s.backend.health}"),
            "load_balancer": http_status(f"http://{n.address}:{door.port}{s.backend.health}"),
        }
    try:
        rows: list[dict[str, Any]] | str = replication_rows(
            transports[p.names.primary], s.postgres.database)
    except Exception as exc:  # the report shows what failed instead of hiding it
        rows = f"error: {exc}"
    return {
        "primary": p.names.primary,
        "durability": p.inv.durability,
        "pg_stat_replication": rows,
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

    def streaming(ctx: StepContext) -> Check:
        rows = replication(ctx.on(primary), p.inv.services.postgres.database)
        row = next((r for r in rows if r.application_name == standby), None)
        if row is None:
            return Check(False, f"pg_stat_replication on {primary} has no {standby}")
        ok = row.state == "streaming" and (row.sync_state == "sync" or not want_sync)
        return Check(ok, f"pg_stat_replication on {primary}: {standby} {row.state} "
                         f"{row.sync_state}")

    def sentinels(_ctx: StepContext) -> Check:
        states = sentinel_states(p)
        peers = len(states) - 1
        bad = [name for name, v in states.items() if isinstance(v, str)
               or v.master_node != primary or not v.quorum_ok or v.other_sentinels != peers]
        return Check(not bad, f"{len(states) - len(bad)}/{len(states)} Sentinels name {primary} "
                              f"master with CKQUORUM OK and {peers} peers"
                              + (f" (not: {', '.join(bad)})" if bad else ""))

    return [
        Step(id=f"{PLAN}/{primary}/verify.replication", host=primary, kind=StepKind.PROBE,
             reason="the guide's check: pg_stat_replication shows the standby streaming"
                    + (" and sync" if want_sync else ""),
             verify=guarded("standby streaming", streaming), settle_timeout=30),
        Step(id=f"{PLAN}/{primary}/verify.sentinel", host=primary, kind=StepKind.PROBE,
             reason="the guide's check: Sentinel names the master; CKQUORUM OK everywhere",
             verify=guarded("Sentinel view", sentinels), settle_timeout=30),
    ]
