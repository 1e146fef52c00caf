"""Two real sites, the real replication program under supervisord, the real nginx router."""

from __future__ import annotations

import hashlib
import io
import os
import time
from dataclasses import replace

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from storage_live import (
    BUCKETS,
    RCLONE,
    LiveNode,
    client,
    get_or_none,
    processes_mentioning,
    setup,
    wait_for,
)

from hapair.components.storage import replication as repl
from hapair.components.storage.backlog import AckedUpload
from hapair.components.storage.probe import parse_state
from hapair.exec.runtime import ServiceState
from hapair.workflows.storage import (
    backlog,
    check_replication,
    install_router,
    media_rpo,
    reconcile,
    replication_status,
    reverse_replication,
    seed_site,
    site_totals,
    start_replication,
    stop_replication,
)

PUB = BUCKETS[0]
BOUND_S = 20.0  # every wait for replication: interval (1 s) + a pass + generous slack


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


def test_router_reads_locally_falls_back_and_writes_to_the_writer(
    nodes: tuple[LiveNode, LiveNode],
) -> None:
    n1, n2 = nodes
    s1, s2 = n1.storage.site, n2.storage.site
    install_router(n1.storage, s2, "node1")
    install_router(n2.storage, s1, "node1")  # node1 takes writes; no replication running
    c1, c2, r2 = client(n1.site_port), client(n2.site_port), client(n2.router_port)
    body = os.urandom(2 * 1024 * 1024 + 3)
    key = "via router/ü x+y.bin"
    r2.put_object(Bucket=PUB, Key=key, Body=body)  # SigV4 for 127.0.0.1:18812, checked by site1
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
    # the peer (the writer) down: local objects still read; writes fail, never land locally
    c2.put_object(Bucket=PUB, Key="local.txt", Body=b"local")
    n1.stop_site()
    assert get_or_none(r2, PUB, "local.txt") == b"local"
    with pytest.raises(ClientError) as refused:
        r2.put_object(Bucket=PUB, Key="during-outage.txt", Body=b"lost?")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 502
    assert get_or_none(c2, PUB, "during-outage.txt") is None
    n1.start_site()
    # the local site down: reads go to the peer
    n2.stop_site()
    assert get_or_none(r2, PUB, key) == body
    n2.start_site()
    # node1's router reads its own site directly
    assert get_or_none(client(n1.router_port), PUB, key) == body


def test_direction_reversal_after_failover(nodes: tuple[LiveNode, LiveNode]) -> None:
    n1, n2 = nodes
    s = setup()
    s1, s2 = n1.storage.site, n2.storage.site
    c1, c2 = client(n1.site_port), client(n2.site_port)
    start_replication(s, n1.storage, n2.storage)
    install_router(n1.storage, s2, "node1")
    install_router(n2.storage, s1, "node1")
    client(n2.router_port).put_object(Bucket=PUB, Key="before.txt", Body=b"before")
    assert get_or_none(c1, PUB, "before.txt") == b"before"  # written to the writer, node1
    wait_for(lambda: get_or_none(c2, PUB, "before.txt") == b"before", "before.txt", BOUND_S)
    # an upload node1 acknowledged but never replicated, then node1 is lost
    n2.runtime.stop(repl.PROGRAM)
    put(n1.site_port, "stranded.txt", b"stranded")
    n1.stop_site()
    rev = reverse_replication(s, n2.storage, None)
    assert (rev.writer, rev.status) == ("node2", "pending")
    assert n2.runtime.status(repl.PROGRAM).state is ServiceState.ABSENT
    settings = n2.storage.replication
    for path in (settings.conf_path, settings.script_path):
        assert not processes_mentioning(path), f"a replication process of node2 runs: {path}"
    install_router(n2.storage, s1, "node2")  # running: a graceful reload, waited for
    client(n2.router_port).put_object(Bucket=PUB, Key="after.txt", Body=b"after")
    assert get_or_none(c2, PUB, "after.txt") == b"after"
    # node1 returns: its stranded upload goes to the writer, then it pulls from node2
    n1.start_site()
    rec = reconcile(s, n1.storage, s2)
    assert rec.objects == 1  # only stranded.txt: before.txt is there, after.txt is newer
    assert get_or_none(c2, PUB, "stranded.txt") == b"stranded"
    rev = reverse_replication(s, n2.storage, n1.storage)
    assert (rev.writer, rev.receiver, rev.status) == ("node2", "node1", "pulling")
    assert n1.runtime.status(repl.PROGRAM).state is ServiceState.RUNNING
    wait_for(lambda: get_or_none(c1, PUB, "after.txt") == b"after", "after.txt on node1", BOUND_S)
    rb = check_replication(s, s2, s1, timeout_s=BOUND_S)
    assert rb.ok, rb.check().reason
    install_router(n1.storage, s2, "node2")
    client(n1.router_port).put_object(Bucket=PUB, Key="via-node1.txt", Body=b"v")
    assert get_or_none(c2, PUB, "via-node1.txt") == b"v"


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
