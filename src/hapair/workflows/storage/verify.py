"""Verification by read-back: canary, backlog and consistency of the two sites, the loops'
own account, per-site totals, and the media RPO of a failover drill."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Iterable

from hapair.components.common import Check
from hapair.components.storage import canary as canary_mod
from hapair.components.storage.backlog import (
    Backlog,
    Found,
    RpoReport,
    Totals,
    Upload,
    compare,
    rpo_report,
    totals,
)
from hapair.components.storage.probe import parse_state, replication_fresh
from hapair.components.storage.site import Site
from hapair.errors import Unhealthy
from hapair.inventory.model import Inventory
from hapair.workflows.storage.s3api import S3Api, listing
from hapair.workflows.storage.setup import StorageNode, StorageSetup, setup_from_inventory


def check_replication(
    setup: StorageSetup, writer: Site, reader: Site, *, timeout_s: float | None = None,
    size: int = 4096, bucket: str | None = None, keep: bool = False,
) -> canary_mod.ReadBack:
    """`hapair check`: write a canary on the writer, read it back on the reader within
    `timeout_s` (default: the promised delay, setup.max_delay_s)."""
    bucket = bucket or setup.buckets[0]
    token = secrets.token_hex(8)
    key = canary_mod.canary_key(time.time(), token)
    body = canary_mod.canary_body(token, size)
    w, r = S3Api(writer, setup), S3Api(reader, setup)
    w.put(bucket, key, body)
    acked = time.monotonic()
    try:
        return canary_mod.read_back(
            key, writer.name, reader.name, body, lambda: r.get(bucket, key), acked_at=acked,
            timeout_s=setup.max_delay_s if timeout_s is None else timeout_s)
    finally:
        if not keep:  # deletes are not replicated: clean both sites
            for api in (w, r):
                # Best effort: a leftover canary is ignored by backlog reports.
                with contextlib.suppress(Exception):
                    api.delete(bucket, key)


def backlog(setup: StorageSetup, writer: Site, other: Site, now: float | None = None) -> Backlog:
    """What `other` lacks of `writer` (missing, or different size/MD5), canaries ignored."""
    w, o = listing(setup, writer), listing(setup, other)
    return compare(writer.name, w, other.name, o, now=time.time() if now is None else now,
                   ignore_prefix=canary_mod.PREFIX)


def site_totals(setup: StorageSetup, sites: Iterable[Site]) -> list[Totals]:
    return [totals(s.name, setup.buckets, listing(setup, s)) for s in sites]


def replication_status(
    setup: StorageSetup, receiver: StorageNode, source: str, *, max_lag_s: float | None = None,
    now: float | None = None,
) -> Check:
    """The pull loop's own account on `receiver`: pulling from `source` (its peer), last good
    pass recent."""
    if setup.backend == "minio":
        return Check.passed("MinIO site replication: verified by canary only")
    s = receiver.replication
    try:
        text = receiver.transport.read_file(s.state_path).decode(errors="replace")
    except FileNotFoundError:
        return Check.failed(f"{receiver.name}: replication has not completed a pass "
                            f"({s.state_path} missing)")
    # A few intervals plus a minute: longer means new uploads wait longer than they should.
    limit = max_lag_s if max_lag_s is not None else 3 * s.interval_s + 60
    return replication_fresh(parse_state(text), now=time.time() if now is None else now,
                             source=source, max_lag_s=limit)


def media_rpo(
    setup: StorageSetup, surviving: Site, uploads: Iterable[Upload], lost_at: float,
    bucket: str | None = None,
) -> RpoReport:
    """The failover drill: read every acknowledged upload back from the surviving site and
    compare its SHA-256; missing or corrupt ones are reported with their age at the loss."""
    bucket = bucket or setup.buckets[0]
    api = S3Api(surviving, setup)
    ups = list(uploads)
    found: dict[str, Found] = {}
    for u in ups:
        try:
            data = api.get(bucket, u.key)
        except Exception as exc:  # noqa: BLE001 - any client error: the site is not usable
            raise Unhealthy(f"{surviving.name}: cannot read {bucket}/{u.key}: {exc}") from None
        found[u.key] = Found(u.key, hashlib.sha256(data).hexdigest() if data is not None else None)
    return rpo_report(surviving.name, ups, found, lost_at)


def media_after_failover(
    inv: Inventory, surviving: str, uploads: Iterable[Upload], lost_at: float,
) -> RpoReport:
    """For the failover drill, from the inventory: which of the drill's acknowledged uploads
    (drill.records.MediaAck fits: key, sha256, acked_at on the drill's clock) the surviving
    node's site holds intact; the missing/corrupt ones with their age at `lost_at` (same
    clock); `rpo_s` is the media RPO. Raises Unhealthy when the site cannot be read."""
    setup, sites = setup_from_inventory(inv)
    site = next((s for s in sites if s.name == surviving), None)
    if site is None:
        raise Unhealthy(f"{surviving} is not a data node: {', '.join(s.name for s in sites)}")
    return media_rpo(setup, site, uploads, lost_at)
