"""The observation verbs' own probes: argv builders and pure parsers (pyinfra's fact shape).

Probes other layers already have are reused where they live: etcd health/status
(components/etcd/probe.py), Patroni /cluster and /patroni (components/patroni/probe.py),
Redis INFO and Sentinel replies (components/redis/probe.py), HAProxy `show stat`
(components/router/stats.py), the VIP (components/keepalived), PgBouncer SHOW
(components/pgbouncer/admin.py). What is new here: one SQL probe for a node's whole
replication state, `df` with the total, Patroni's leader key and its lease in etcd, the
newest backup per kind, one Sentinel's view of the master and an HTTP health answer (these
two take the connection or the GET as an argument, so `gather` and the upgrade's final
checks share them).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx
import redis

from hapair.components.patroni.probe import NodeStatus
from hapair.components.pgdump import parse_lsn
from hapair.components.redis.probe import (
    ckquorum,
    get_master_addr,
    parse_ckquorum,
    parse_master_addr,
    parse_sentinel_entries,
    sentinel_sentinels,
)
from hapair.errors import StepFailed
from hapair.observe.snapshot import (
    BackupSeen,
    Disk,
    HttpResult,
    LeaderKey,
    PatroniNode,
    PgStatus,
    ReplicationRow,
    SentinelState,
    SlotState,
)
from hapair.workflows.backup.model import BackupEntry, Manifest, entry_from_name

# --- PostgreSQL: one query, one JSON line ---------------------------------------------------

# The timeline: on a primary, the first 8 hex digits of the current WAL file name (exact right
# after a promotion, unlike the last checkpoint's); on a standby, the receiver's timeline or
# the last restartpoint's. Lag in bytes from LSNs; the replay delay as the module doc says.
PG_STATUS_SQL = """\
SELECT json_build_object(
  'in_recovery', pg_is_in_recovery(),
  'server_version_num', current_setting('server_version_num')::int,
  'timeline', CASE WHEN pg_is_in_recovery()
      THEN COALESCE((SELECT received_tli FROM pg_stat_wal_receiver),
                    (SELECT timeline_id FROM pg_control_checkpoint()))
      ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
  'current_lsn', CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END,
  'receive_lsn', pg_last_wal_receive_lsn(),
  'replay_lsn', pg_last_wal_replay_lsn(),
  'receiver', (SELECT status FROM pg_stat_wal_receiver),
  'replay_delay_s', CASE
      WHEN NOT pg_is_in_recovery() THEN NULL
      WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
      ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END,
  'sync_standby_names', current_setting('synchronous_standby_names'),
  'replication', COALESCE((
      SELECT json_agg(json_build_object(
          'application_name', application_name, 'client_addr', host(client_addr),
          'state', state, 'sync_state', sync_state,
          'lag_bytes', pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn),
          'replay_lag_s', extract(epoch FROM replay_lag)) ORDER BY application_name)
      FROM pg_stat_replication WHERE NOT pg_is_in_recovery()), '[]'::json),
  'slots', COALESCE((
      SELECT json_agg(json_build_object(
          'name', slot_name, 'type', slot_type, 'active', active, 'wal_status', wal_status,
          'retained_bytes', pg_wal_lsn_diff(
              CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                   ELSE pg_current_wal_lsn() END, restart_lsn)) ORDER BY slot_name)
      FROM pg_replication_slots), '[]'::json)
);
"""


def _int(value: object) -> int | None:
    """JSON numbers to int without a trip through float (etcd lease ids are 63-bit)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        pass
    try:
        return int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


def _float(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _json_line(text: str, what: str) -> dict[str, Any]:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise StepFailed(f"{what}: no output")
    try:
        data = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise StepFailed(f"{what}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise StepFailed(f"{what}: expected a JSON object")
    return data


def parse_pg_status(text: str) -> PgStatus:
    """The output of PG_STATUS_SQL (psql -At: one JSON line)."""
    d = _json_line(text, "PostgreSQL status")
    if not isinstance(d.get("in_recovery"), bool):
        raise StepFailed("PostgreSQL status: in_recovery missing")
    return PgStatus(
        in_recovery=d["in_recovery"],
        timeline=_int(d.get("timeline")),
        current_lsn=parse_lsn(d.get("current_lsn")),
        receive_lsn=parse_lsn(d.get("receive_lsn")),
        replay_lsn=parse_lsn(d.get("replay_lsn")),
        receiver=d.get("receiver"),
        replay_delay_s=_float(d.get("replay_delay_s")),
        sync_standby_names=str(d.get("sync_standby_names") or ""),
        replication=tuple(
            ReplicationRow(str(r.get("application_name") or ""), str(r.get("client_addr") or ""),
                           str(r.get("state") or ""), str(r.get("sync_state") or ""),
                           _int(r.get("lag_bytes")), _float(r.get("replay_lag_s")))
            for r in d.get("replication") or ()
        ),
        slots=tuple(
            SlotState(str(s.get("name") or ""), str(s.get("type") or ""), bool(s.get("active")),
                      s.get("wal_status"), _int(s.get("retained_bytes")))
            for s in d.get("slots") or ()
        ),
        server_version_num=_int(d.get("server_version_num")) or 0,
    )


# --- disk -------------------------------------------------------------------------------------


def df_argv(path: str) -> list[str]:
    """`df -PB1` of the path, or of its nearest existing parent."""
    script = 'p="$1"; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; exec df -PB1 "$p"'
    return ["sh", "-c", script, "sh", path]


def parse_df(output: str, path: str) -> Disk:
    """`df -PB1`: the last line's 1-blocks (total) and Available columns."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    fields = lines[-1].split() if len(lines) >= 2 else []
    if len(fields) < 4 or not fields[1].isdigit() or not fields[3].isdigit():
        raise StepFailed(f"df: unexpected output {output.strip()[-120:]!r}")
    return Disk(path, total_bytes=int(fields[1]), free_bytes=int(fields[3]))


# --- Patroni ----------------------------------------------------------------------------------


def patroni_node(status: NodeStatus) -> PatroniNode:
    return PatroniNode(status.role, status.state, status.timeline, status.pending_restart)


# --- etcd: Patroni's leader key and its lease ---------------------------------------------------

ETCDCTL_TIMEOUTS = ("--dial-timeout=2s", "--command-timeout=3s")


def etcd_get_argv(endpoint: str, key: str) -> list[str]:
    """A linearizable read: a member cut off from the quorum cannot answer it."""
    return ["etcdctl", f"--endpoints={endpoint}", *ETCDCTL_TIMEOUTS, "get", key, "-w", "json"]


def etcd_lease_argv(endpoint: str, lease_id: int) -> list[str]:
    return ["etcdctl", f"--endpoints={endpoint}", *ETCDCTL_TIMEOUTS, "lease", "timetolive",
            f"{lease_id:x}", "-w", "json"]


def parse_etcd_get(text: str) -> tuple[str | None, int | None]:
    """`etcdctl get KEY -w json` → (value, lease id); (None, None) when the key is absent."""
    d = _json_line(text, "etcdctl get")
    kvs = d.get("kvs") or []
    if not kvs:
        return None, None
    kv = kvs[0]
    try:
        value = base64.b64decode(kv.get("value", "")).decode("utf-8", "replace")
    except ValueError:
        raise StepFailed("etcdctl get: value is not base64") from None
    return value, _int(kv.get("lease")) or None


def parse_etcd_lease(text: str) -> tuple[int, int]:
    """`etcdctl lease timetolive ID -w json` → (ttl remaining, granted ttl); ttl -1: gone."""
    d = _json_line(text, "etcdctl lease timetolive")
    ttl, granted = _int(d.get("ttl")), _int(d.get("granted-ttl"))
    if ttl is None:
        raise StepFailed("etcdctl lease timetolive: no ttl in the reply")
    return ttl, granted or 0


def leader_key(holder: str | None, lease: int | None, lease_reply: tuple[int, int] | None,
               seen_from: str) -> LeaderKey:
    ttl, granted = lease_reply if lease_reply else (None, None)
    return LeaderKey(holder, lease, ttl, granted, seen_from)


# --- backups: the newest of each kind -----------------------------------------------------------


def list_backups_argv(backup_dir: str) -> list[str]:
    # A missing directory is "no backups", not an error: print nothing then.
    script = ('[ -d "$1" ] || exit 0; '
              'exec find "$1" -mindepth 1 -maxdepth 1 -type d -printf "%f\\n"')
    return ["sh", "-c", script, "sh", backup_dir]


def newest_complete(node: str, backup_dir: str, names: Iterable[str]) -> list[BackupEntry]:
    """The newest complete backup directory of each kind, newest first."""
    best: dict[str, BackupEntry] = {}
    for name in names:
        entry = entry_from_name(node, backup_dir, name.strip())
        if entry is None or not entry.complete:
            continue
        if entry.kind not in best or entry.taken_at > best[entry.kind].taken_at:
            best[entry.kind] = entry
    return sorted(best.values(), key=lambda e: e.taken_at, reverse=True)


def backup_seen(entry: BackupEntry, manifest: Mapping[str, Any] | None, problem: str = ""
                ) -> BackupSeen:
    """An entry and its manifest.json (None when it could not be read: `problem` says why)."""
    finished: float | None = None
    verified: bool | None = None
    if manifest is not None:
        try:
            m = Manifest.from_dict(dict(manifest))
        except ValueError as exc:
            problem = f"manifest.json unreadable: {exc}"
        else:
            finished = _iso_epoch(m.finished_at)
            verified = m.verified_ok if m.verification is not None else None
            if finished is None:
                problem = f"manifest.json finished_at {m.finished_at!r} is not a time"
    return BackupSeen(entry.kind, entry.id, entry.taken_at.timestamp(), finished, verified,
                      problem)


def _iso_epoch(text: str) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


# --- Sentinel: one Sentinel's view of the master ------------------------------------------------

Execute = Callable[..., Any]  # a RESP client's execute_command


def sentinel_state(execute: Execute, master_name: str,
                   node_of: Callable[[str | None], str | None]) -> SentinelState:
    """GET-MASTER-ADDR-BY-NAME, CKQUORUM and SENTINEL SENTINELS over one connection;
    `node_of` maps the master's address to a node name. NOQUORUM arrives as an error reply:
    it is an answer, not a failure."""
    addr = parse_master_addr(execute(*get_master_addr(master_name).words))
    try:
        quorum = parse_ckquorum(execute(*ckquorum(master_name).words))
    except redis.ResponseError as exc:
        quorum = parse_ckquorum(str(exc))
    others = parse_sentinel_entries(execute(*sentinel_sentinels(master_name).words))
    return SentinelState(f"{addr.host}:{addr.port}" if addr else None,
                         node_of(addr.host if addr else None), quorum.ok, quorum.usable,
                         quorum.message, len(others))


# --- HTTP health --------------------------------------------------------------------------------

HttpGet = Callable[[str, float], tuple[int, str]]  # (url, timeout) -> (status, body)


def http_error(exc: Exception, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {exc}"
    return str(exc) or type(exc).__name__


def http_result(get: HttpGet, name: str, url: str, timeout: float) -> HttpResult:
    """One GET of a health endpoint; a failed request is the answer (status None)."""
    try:
        code, _ = get(url, timeout)
        return HttpResult(name, url, code)
    except Exception as exc:  # noqa: BLE001 - whatever failed, the endpoint did not answer
        return HttpResult(name, url, None, http_error(exc, timeout))
