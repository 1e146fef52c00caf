"""`hapair failover --to NODE`: the decision, taken from a frozen snapshot of facts (pure).

Every refusal is one line naming the reason (exit 3). What may be lost is stated as an LSN
window and a byte count when it can be known, and as "unknown" when it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass


def parse_lsn(text: str) -> int | None:
    """'0/3000060' → 0x3000060; '' (NULL) → None."""
    text = text.strip()
    if not text or "/" not in text:
        return None
    hi, lo = text.split("/", 1)
    return (int(hi, 16) << 32) + int(lo, 16)


def fmt_lsn(lsn: int | None) -> str:
    return "unknown" if lsn is None else f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


@dataclass(frozen=True)
class PgSide:
    """One node's PostgreSQL as psql on the node saw it; running False: no answer."""

    running: bool
    in_recovery: bool | None = None
    lsn: int | None = None  # primary: pg_current_wal_lsn; standby: max(received, replayed)


@dataclass(frozen=True)
class Facts:
    target: str
    old: str  # the other data node (the primary that was lost)
    data_nodes: tuple[str, ...]
    durability: str  # sync | strict | async
    witness: str | None
    etcd_quorum: bool  # a majority of ALL etcd members healthy
    patroni_leader: str | None  # who holds Patroni's leader key (only known with quorum)
    target_pg: PgSide
    old_reachable: bool
    old_pg: PgSide  # running False when unreachable or stopped
    sync_key: tuple[str | None, str | None]  # (leader, sync_standby) from Patroni's /sync


@dataclass(frozen=True)
class Choices:
    allow_data_loss: bool = False
    old_primary_is_down: bool = False  # the operator's fencing statement


@dataclass(frozen=True)
class Decision:
    refused: str | None  # the reason, or None: go ahead
    mode: str = ""  # "patroni" (the DCS has quorum) | "forced-dcs" (no majority)
    in_sync: bool | None = None
    loss: str = ""  # what may be lost (one line), "" when nothing
    loss_bytes: int | None = None
    fence: str = ""  # how the old primary is fenced: "stop" | "operator statement"

    @property
    def ok(self) -> bool:
        return self.refused is None


def _refuse(reason: str) -> Decision:
    return Decision(refused=reason)


def decide(f: Facts, c: Choices) -> Decision:
    if f.target not in f.data_nodes:
        return _refuse(f"{f.target} is not a data node ({', '.join(f.data_nodes)})")
    if f.etcd_quorum and f.patroni_leader is not None:
        return _refuse(
            f"automatic failover is on (etcd has its quorum, Patroni's leader key is held by "
            f"{f.patroni_leader}): Patroni fails over by itself when the leader is lost; for a "
            f"planned move use `hapair switchover --to {f.target}`")
    if f.target_pg.running and f.target_pg.in_recovery is False:
        return _refuse(f"{f.target} is already a writable primary: nothing to fail over "
                       "(if both are writable, fence the other one now)")
    if not f.target_pg.running or f.target_pg.in_recovery is not True:
        return _refuse(f"{f.target}'s PostgreSQL is not running as a standby: it cannot be "
                       "promoted (start it, or `hapair rejoin` it, first)")
    if not f.old_reachable and not c.old_primary_is_down:
        return _refuse(
            f"{f.old} cannot be reached, so hapair cannot stop it: a primary that is only cut "
            f"off would keep accepting writes. Power it off, then say so with "
            f"--old-primary-is-down")
    in_sync, loss, loss_bytes = _sync_state(f)
    if not in_sync and not c.allow_data_loss:
        return _refuse(f"{f.target} is not known to be in sync ({loss}): refusing a failover "
                       "that may lose acknowledged commits; --allow-data-loss accepts that")
    return Decision(refused=None, mode="patroni" if f.etcd_quorum else "forced-dcs",
                    in_sync=in_sync, loss="" if in_sync else loss, loss_bytes=loss_bytes,
                    fence="stop" if f.old_reachable else "operator statement")


def _sync_state(f: Facts) -> tuple[bool, str, int | None]:
    """(known in sync?, what may be lost, bytes that may be lost when known)."""
    mine = f.target_pg.lsn
    theirs = f.old_pg.lsn if f.old_pg.running and f.old_pg.in_recovery is False else None
    if theirs is not None and mine is not None:
        # The old primary answered: compare positions, in every durability mode.
        lost = max(0, theirs - mine)
        return (lost == 0, f"WAL {fmt_lsn(mine)}..{fmt_lsn(theirs)} ({lost} bytes) not on "
                           f"{f.target}", lost)
    if f.durability in ("sync", "strict"):
        leader, standby = f.sync_key
        if standby == f.target and leader in (f.old, None):
            return True, "", 0
        return (False, f"Patroni's /sync key names {standby or 'no standby'} as synchronous "
                       f"standby, not {f.target}; commits after {fmt_lsn(mine)} may be lost",
                None)
    return (False, f"async replication and {f.old}'s position is unknown: commits after "
                   f"{fmt_lsn(mine)} may be lost", None)
