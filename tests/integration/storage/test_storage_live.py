"""Two real sites, the real replication programs under supervisord, the real HAProxy write
selector and nginx router; Patroni's GET /primary is a stand-in the tests flip."""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from storage_live import (
    BUCKETS,
    RCLONE,
    FakePatroni,
    LiveNode,
    client,
    get_or_none,
    setup,
    wait_for,
)

from hapair.components.storage import replication as repl
from hapair.components.storage.backlog import AckedUpload
from hapair.components.storage.probe import parse_state
from hapair.exec.runtime import ServiceState
from hapair.observe.gather import http_get
from hapair.observe.storage import StorageNodeTarget, StorageTargets, gather_storage
from hapair.workflows.storage import (
    backlog,
    check_replication,
    install_routing,
    media_rpo,
    replication_status,
    seed_site,
    site_totals,
    start_replication,
    start_two_way,
    stop_replication,
)

PUB = BUCKETS[0]
BOUND_S = 20.0  # every wait for replication: interval (1 s) + a pass + generous slack
SWITCH_S = 15.0  # the write selector's checks: inter 1 s, fall/rise 2 -> ~3 s, with slack


def put(port: int, key: str, body: bytes, bucket: str = PUB) -> None:
    client(port).put_object(Bucket=bucket, Key=key, Body=body)


def state_of(node: LiveNode) -> dict[str, object] | None:
    path = node.dir / "state" / "replication.json"
    return parse_state(path.read_text()).__dict__ if path.exists() else None


def pass_started_after(node: LiveNode, t: float) -> bool:
    """A replication pass that started after `t` (epoch) has finished."""
    st = state_of(node)
    return bool(st and st["ok"] and int(st["started"]) > t)  # type: ignore[call-overload]


def test_seed_copies_existing_objects(nodes: tuple[LiveNode, LiveNode]) -> None:
    n1, n2 = nodes
    s = setup()
    bodies = {f"old/{i:02d}.bin": os.urandom(1000 * i + 1) for i in range(20)}
    bodies["old/with space ü.jpg"] = os.urandom(3 * 1024 * 1024)
    for key, body in bodies.items():
        put(n1.site_port, key, body)
    put(n1.site_port, "private.txt", b"private", bucket=BUCKETS[1])
    said: list[str] = []
    report = seed_site(s, n1.storage.site, n2.storage, said.append)
    assert report.objects == 22
    assert report.bytes == sum(len(b) for b in bodies.values()) + len(b"private")
    assert any("media-public: 21 objects copied" in line for line in said)
    t1, t2 = site_totals(s, [n1.storage.site, n2.storage.site])
    assert (t2.objects, t2.bytes) == (t1.objects, t1.bytes) == (
        {PUB: 21, BUCKETS[1]: 1}, {PUB: report.bytes - 7, BUCKETS[1]: 7})
    assert backlog(s, n1.storage.site, n2.storage.site).check().ok
    c2 = client(n2.site_port)
    assert get_or_none(c2, PUB, "old/with space ü.jpg") == bodies["old/with space ü.jpg"]
    again = seed_site(s, n1.storage.site, n2.storage)  # idempotent: nothing left to copy
    assert (again.objects, sum(b.checks for b in again.buckets.values())) == (0, 22)


# The copying client: the wheel's rclone, and Debian's (1.60, the production default) if present.
CLIENTS = [RCLONE] + (["/usr/bin/rclone"] if os.path.exists("/usr/bin/rclone") else [])


@pytest.mark.parametrize("client_rclone", CLIENTS)
def test_new_uploads_reach_the_peer(nodes: tuple[LiveNode, LiveNode], client_rclone: str) -> None:
    n1, n2 = nodes
    s = setup()
    n2.storage = replace(n2.storage, replication=replace(n2.storage.replication,
                                                         rclone=client_rclone))
    check = start_replication(s, n1.storage, n2.storage)
    assert check.ok, check.reason
    assert n2.runtime.status(repl.PROGRAM).state is ServiceState.RUNNING
    assert n1.runtime.status(repl.PROGRAM).state is ServiceState.ABSENT  # pull: receiver only
    c2 = client(n2.site_port)
    for i, size in enumerate((10, 300_000, 5 * 1024 * 1024)):
        body = os.urandom(size)
        put(n1.site_port, f"new/{i}.bin", body)
        wait_for(lambda k=f"new/{i}.bin", b=body: get_or_none(c2, PUB, k) == b,
                 f"new/{i}.bin on node2", timeout=BOUND_S)
    rb = check_replication(s, n1.storage.site, n2.storage.site, timeout_s=BOUND_S)
    assert rb.ok, rb.check().reason
    assert rb.delay_s is not None and rb.delay_s <= BOUND_S
    for port in (n1.site_port, n2.site_port):  # the canary is cleaned from both sites
        listed = client(port).list_objects_v2(Bucket=PUB, Prefix="hapair-canary/")
        assert not listed.get("Contents")
    wait_for(lambda: state_of(n2), "the loop's state file")
    status = replication_status(s, n2.storage, "node1")
    assert status.ok, status.reason
    assert not replication_status(s, n2.storage, "node2").ok  # wrong direction is reported
    # Deletes are not propagated: a copy never deletes on the receiver.
    client(n1.site_port).delete_object(Bucket=PUB, Key="new/0.bin")
    deleted_at = time.time()
    wait_for(lambda: pass_started_after(n2, deleted_at + 1), "a pass after the delete", BOUND_S)
    assert get_or_none(c2, PUB, "new/0.bin") is not None


def primary(n1: LiveNode, n2: LiveNode, which: LiveNode | None) -> None:
    """Flip the Patroni stand-ins: `which` answers GET /primary with 200, the other 503."""
    for n in (n1, n2):
        assert n.patroni is not None
        n.patroni.primary = n is which


def lands_on(port: int, key: str, body: bytes) -> Callable[[], bool]:
    """A write through a router that lands on the site at `port` (retried while the write
    selector has no site yet: 503 during the switch)."""
    def attempt() -> bool:
        try:
            client(port).put_object(Bucket=PUB, Key=key, Body=body)
        except ClientError:
            return False
        return True
    return attempt


def test_router_reads_locally_falls_back_and_writes_to_the_writer(
    nodes: tuple[LiveNode, LiveNode],
) -> None:
    n1, n2 = nodes
    install_routing(n1.storage, n2.storage)
    install_routing(n2.storage, n1.storage)  # node1 is primary; no replication running
    c1, c2, r2 = client(n1.site_port), client(n2.site_port), client(n2.router_port)
    wait_for(lambda: lands_on(n2.router_port, "warmup.txt", b"w")()
             and get_or_none(c1, PUB, "warmup.txt") is not None, "the selector to pick node1",
             SWITCH_S, every=0.5)
    body = os.urandom(2 * 1024 * 1024 + 3)
    key = "via router/ü x+y.bin"
    r2.put_object(Bucket=PUB, Key=key, Body=body)  # SigV4 for 127.0.0.1:17012, checked by site1
    assert get_or_none(c1, PUB, key) == body
    assert get_or_none(c2, PUB, key) is None  # never written to the local site
    # boto3's default checksums (aws-chunked upload with a CRC trailer) pass through too
    plain = client(n2.router_port, request_checksum_calculation="when_supported",
                   response_checksum_validation="when_supported")
    plain.put_object(Bucket=PUB, Key="default-config.bin", Body=b"x" * 70_000)
    assert get_or_none(c1, PUB, "default-config.bin") == b"x" * 70_000
    # a multipart upload (POST initiate, PUT parts, POST complete) goes to the writer as well
    big = os.urandom(11 * 1024 * 1024)
    r2.upload_fileobj(io.BytesIO(big), PUB, "multipart.bin", Config=TransferConfig(
        multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
    assert get_or_none(c1, PUB, "multipart.bin") == big
    # a read of an object the local site lacks falls back to the peer
    assert get_or_none(r2, PUB, key) == body
    assert r2.head_object(Bucket=PUB, Key=key)["ContentLength"] == len(body)
    with pytest.raises(ClientError) as missing:
        r2.get_object(Bucket=PUB, Key="nowhere.bin")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # the peer (the writer) down while still primary: local objects still read; writes fail,
    # never land locally
    c2.put_object(Bucket=PUB, Key="local.txt", Body=b"local")
    n1.stop_site()
    assert get_or_none(r2, PUB, "local.txt") == b"local"
    with pytest.raises(ClientError) as refused:
        r2.put_object(Bucket=PUB, Key="during-outage.txt", Body=b"lost?")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] in (502, 503)
    assert get_or_none(c2, PUB, "during-outage.txt") is None
    n1.start_site()
    # no node answers GET /primary (an election, or before Patroni runs): writes land on the
    # node's own site (HAProxy's backup server) instead of failing; reads still work
    primary(n1, n2, None)
    wait_for(lambda: lands_on(n2.router_port, "probe.txt", b"p")()
             and get_or_none(c2, PUB, "probe.txt") is not None,
             "writes to fall back to the local site", SWITCH_S, every=0.5)
    r2.put_object(Bucket=PUB, Key="election.txt", Body=b"e")
    assert get_or_none(c2, PUB, "election.txt") == b"e"
    assert get_or_none(c1, PUB, "election.txt") is None
    assert get_or_none(r2, PUB, key) == body
    # the local site down: reads go to the peer
    n2.stop_site()
    assert get_or_none(r2, PUB, key) == body
    n2.start_site()
    # node1's router reads its own site directly
    assert get_or_none(client(n1.router_port), PUB, key) == body


def test_writes_and_replication_follow_the_primary(nodes: tuple[LiveNode, LiveNode]) -> None:
    """Unplanned failover and rejoin with nobody touching storage: writes move to node2's
    site when node2 becomes primary, node1's stranded upload reaches node2 when node1 comes
    back, node2's uploads reach node1, and on a key that differs the writer's copy wins."""
    n1, n2 = nodes
    s = setup()
    s1, s2 = n1.storage.site, n2.storage.site
    c1, c2 = client(n1.site_port), client(n2.site_port)
    put(n1.site_port, "conflict.txt", b"node1's version")
    put(n2.site_port, "conflict.txt", b"node2's version")
    assert all(c.ok for c in start_two_way(s, n1.storage, n2.storage))
    for n, peer in ((n1, n2), (n2, n1)):
        install_routing(n.storage, peer.storage)
        assert n.runtime.status(repl.PROGRAM).state is ServiceState.RUNNING
    wait_for(lands_on(n2.router_port, "before.txt", b"before"), "writes via node2's router",
             SWITCH_S, every=0.5)
    assert get_or_none(c1, PUB, "before.txt") == b"before"  # on the writer, node1
    wait_for(lambda: get_or_none(c2, PUB, "before.txt") == b"before", "before.txt", BOUND_S)
    # node1 (the writer) wins: its version replaces node2's, never the reverse
    wait_for(lambda: get_or_none(c2, PUB, "conflict.txt") == b"node1's version",
             "the writer's copy of conflict.txt on node2", BOUND_S)
    assert get_or_none(c1, PUB, "conflict.txt") == b"node1's version"
    # an upload node1 acknowledged but node2 never pulled, then node1 is lost
    n2.runtime.stop(repl.PROGRAM)
    put(n1.site_port, "stranded.txt", b"stranded")
    n1.stop_site()
    assert n1.patroni is not None
    n1.patroni.stop()  # node1's Patroni is gone with it; node2's is promoted
    primary(n1, n2, n2)
    n2.runtime.start(repl.PROGRAM)  # keeps pulling (failing) from node1 while it is down
    wait_for(lands_on(n2.router_port, "after.txt", b"after"), "writes moved to node2",
             SWITCH_S, every=0.5)
    assert get_or_none(c2, PUB, "after.txt") == b"after"
    # node1 returns (its Patroni as a replica): nobody changes a config
    n1.patroni = FakePatroni(17031)
    n1.start_site()
    wait_for(lambda: get_or_none(c2, PUB, "stranded.txt") == b"stranded",
             "node1's stranded upload on node2 (add-only pull from a non-writer)", BOUND_S)
    wait_for(lambda: get_or_none(c1, PUB, "after.txt") == b"after", "after.txt on node1",
             BOUND_S)
    assert get_or_none(c2, PUB, "conflict.txt") == b"node1's version"  # never overwritten
    rb = check_replication(s, s2, s1, timeout_s=BOUND_S)
    assert rb.ok, rb.check().reason
    wait_for(lands_on(n1.router_port, "via-node1.txt", b"v"), "writes via node1's router",
             SWITCH_S, every=0.5)
    assert get_or_none(c2, PUB, "via-node1.txt") == b"v"  # node1's router writes to node2
    for n, source in ((n1, "node2"), (n2, "node1")):
        check = replication_status(s, n.storage, source)
        assert check.ok, check.reason
    state = parse_state((n1.dir / "state" / "replication.json").read_text())
    assert state.source_writer is True  # node1 pulls from the writer, node2
    state = parse_state((n2.dir / "state" / "replication.json").read_text())
    assert state.source_writer is False  # node2 only adds from node1


def test_check_detects_corrupt_and_missing_objects(nodes: tuple[LiveNode, LiveNode]) -> None:
    n1, n2 = nodes
    s = setup()
    s1, s2 = n1.storage.site, n2.storage.site
    for i in range(5):
        put(n1.site_port, f"obj/{i}.bin", os.urandom(1000 + i))
    seed_site(s, s1, n2.storage)
    assert backlog(s, s1, s2).check().ok
    c2 = client(n2.site_port)
    c2.put_object(Bucket=PUB, Key="obj/1.bin", Body=os.urandom(1001))  # same size, other bytes
    c2.delete_object(Bucket=PUB, Key="obj/3.bin")
    found = backlog(s, s1, s2)
    assert [(d.key, d.problem) for d in found.differences] == [
        ("obj/1.bin", "md5"), ("obj/3.bin", "missing")]
    assert not found.check().ok
    rb = check_replication(s, s1, s2, timeout_s=2.0)  # nothing replicates: the canary fails
    assert (rb.ok, rb.last_seen) == (False, "absent")
    # what `hapair check` sees (observe/storage.py), against the real sites: node1 writes
    targets = StorageTargets(replace(s, max_delay_s=30.0), tuple(
        StorageNodeTarget(n.name, n.storage.site, n.storage.write_target.primary_url,
                          "/nonexistent.sock", "/nonexistent.json") for n in (n1, n2)))
    snap = gather_storage(targets, http_get, {}, now=time.time() + 60, timeout=3.0,
                          canary=False)
    assert snap.writer.value == "node1" and snap.compared.value is not None
    assert [(p.key, p.problem) for p in snap.compared.value.settled] == [
        ("obj/1.bin", "md5"), ("obj/3.bin", "missing")]
    young = gather_storage(targets, http_get, {}, now=time.time(), timeout=3.0, canary=False)
    assert young.compared.value is not None and young.compared.value.settled == ()
    # replication's first pass is full, with --checksum: both are repaired
    start_replication(s, n1.storage, n2.storage)
    wait_for(lambda: backlog(s, s1, s2).check().ok, "the backlog to clear", BOUND_S)
    stop_replication(s, n2.storage)
    assert n2.runtime.status(repl.PROGRAM).state is ServiceState.ABSENT


def test_media_rpo_names_lost_uploads(nodes: tuple[LiveNode, LiveNode]) -> None:
    n1, n2 = nodes
    s = setup()
    acks = []
    for i in range(6):
        body = os.urandom(500 + i)
        put(n1.site_port, f"m/{i}.jpg", body)
        acks.append(AckedUpload(f"m/{i}.jpg", hashlib.sha256(body).hexdigest(), 100.0 + i))
        if i == 3:
            seed_site(s, n1.storage.site, n2.storage)  # m/0..3 reached node2, m/4..5 did not
    client(n2.site_port).put_object(Bucket=PUB, Key="m/1.jpg", Body=b"damaged")
    n1.stop_site()  # the writer is lost at t=106
    report = media_rpo(s, n2.storage.site, acks, lost_at=106.0)
    assert [(x.key, x.problem, x.age_s) for x in report.lost] == [
        ("m/1.jpg", "corrupt", 5.0), ("m/4.jpg", "missing", 2.0), ("m/5.jpg", "missing", 1.0)]
    assert report.rpo_s == 5.0
    assert not report.check().ok
