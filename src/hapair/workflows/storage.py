"""Object-storage workflows: what upgrade, status, check, failover and the drill call.

Commands on the nodes go through their Transport and ServiceRuntime; S3 requests (listings,
canaries) go from the controller straight to each site's endpoint with boto3, bounded by
short timeouts. Which site takes writes is decided by the caller (the node that holds the
PostgreSQL primary) and passed in.

    setup_from_inventory(inv)                      -> StorageSetup, (site1, site2)
    storage_nodes(ctx)                             -> StorageSetup, (node1, node2) from a context
    start_site(setup, node, server)                backend s3: rclone serve s3 on a node
    ensure_buckets(setup, site)                    create missing buckets on a site
    seed_site(setup, writer_site, receiver)        copy existing objects, per-bucket stats
    start_replication(setup, writer, receiver)     rclone pull program / mc site replication
    stop_replication(setup, node)
    reverse_replication(setup, new_writer, old)    after a failover (old may be unreachable)
    reconcile(setup, old_writer, new_writer_site)  uploads stranded on the old writer
    install_router(node, peer, writer_name)        nginx router, tested, reloaded gracefully
    check_replication(setup, writer, reader)       canary read-back -> ReadBack (delay)
    backlog(setup, writer, other)                  -> Backlog
    site_totals(setup, sites)                      -> [Totals] object counts and bytes
    replication_status(setup, receiver, writer)    the pull loop's last good pass -> Check
    media_rpo(setup, surviving, uploads, lost_at)  -> RpoReport
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hapair.components.common import Check, RenderedFile
from hapair.components.storage import canary as canary_mod
from hapair.components.storage import minio
from hapair.components.storage import replication as repl
from hapair.components.storage import router as s3router
from hapair.components.storage.backlog import (
    Backlog,
    Found,
    ObjectInfo,
    RpoReport,
    Totals,
    Upload,
    compare,
    index,
    rpo_report,
    totals,
)
from hapair.components.storage.probe import (
    CopyStats,
    parse_list_page,
    parse_rclone_stats,
    parse_state,
    replication_fresh,
)
from hapair.components.storage.site import (
    SITE_PROGRAM,
    Backend,
    S3Credentials,
    Site,
    SiteServer,
    require_bucket,
    site_env_file,
    site_spec,
)
from hapair.errors import CommandFailed, StepFailed, Unhealthy, UsageError
from hapair.exec.runtime import ServiceRuntime, ServiceState
from hapair.exec.transport import Transport
from hapair.inventory.model import Inventory
from hapair.workflows.context import WorkflowContext

Progress = Callable[[str], None]
START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class StorageSetup:
    backend: Backend
    buckets: tuple[str, ...]
    credentials: S3Credentials = field(repr=False)
    mc: minio.Mc = minio.Mc()
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.backend not in ("s3", "minio"):
            raise UsageError(f"storage backend {self.backend!r} is not s3 or minio")
        if not self.buckets:
            raise UsageError("storage: no bucket")
        for bucket in self.buckets:
            require_bucket(bucket, "storage bucket")


@dataclass(frozen=True)
class StorageNode:
    """A data node as these workflows drive it. `replication` and `router` override paths and
    binaries (the lab and tests put them elsewhere); defaults are the production layout."""

    site: Site
    transport: Transport
    runtime: ServiceRuntime
    replication: repl.ReplicationSettings = repl.ReplicationSettings()
    router: Mapping[str, Any] = field(default_factory=dict)  # RouterParams overrides

    @property
    def name(self) -> str:
        return self.site.name


def setup_from_inventory(inv: Inventory) -> tuple[StorageSetup, tuple[Site, Site]]:
    st = inv.services.storage
    first, second = inv.nodes
    sites = (Site(first.name, first.address, st.port), Site(second.name, second.address, st.port))
    setup = StorageSetup(st.backend, tuple(st.buckets), S3Credentials(st.access_key, st.secret_key))
    return setup, sites


def storage_nodes(
    ctx: WorkflowContext, replication: repl.ReplicationSettings | None = None,
    router: Mapping[str, Any] | None = None,
) -> tuple[StorageSetup, tuple[StorageNode, StorageNode]]:
    """The setup and both data nodes, reached through the context's transports/runtimes."""
    setup, sites = setup_from_inventory(ctx.inventory)
    settings = replication or repl.ReplicationSettings()
    first, second = (StorageNode(s, ctx.transports[s.name], ctx.runtime(s.name), settings,
                                 dict(router or {})) for s in sites)
    return setup, (first, second)


# -- S3 access from the controller ------------------------------------------------------------


class S3Api:
    """A few bounded S3 calls against one site (boto3, path style, SigV4)."""

    def __init__(self, site: Site, setup: StorageSetup) -> None:
        import boto3  # the controller needs it only for storage checks
        from botocore.config import Config

        access, secret = setup.credentials.pair()
        self.site = site
        self._client = boto3.session.Session().client(
            "s3", endpoint_url=site.url, aws_access_key_id=access,
            aws_secret_access_key=secret, region_name="us-east-1",
            config=Config(
                connect_timeout=setup.connect_timeout_s, read_timeout=setup.read_timeout_s,
                retries={"total_max_attempts": 2, "mode": "standard"},
                signature_version="s3v4", s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self._client.put_object(Bucket=bucket, Key=key, Body=body)

    def get(self, bucket: str, key: str) -> bytes | None:
        try:
            return bytes(self._client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except self._client.exceptions.ClientError as exc:
            if _status(exc) == 404:
                return None
            raise

    def delete(self, bucket: str, key: str) -> None:
        self._client.delete_object(Bucket=bucket, Key=key)

    def list(self, bucket: str) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            out += parse_list_page(bucket, page)
        return out

    def ensure_bucket(self, bucket: str) -> bool:
        try:
            self._client.head_bucket(Bucket=bucket)
            return False
        except self._client.exceptions.ClientError as exc:
            if _status(exc) != 404:
                raise
        self._client.create_bucket(Bucket=bucket)
        return True


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _listing(setup: StorageSetup, site: Site) -> dict[tuple[str, str], ObjectInfo]:
    api = S3Api(site, setup)
    try:
        return index(o for b in setup.buckets for o in api.list(b))
    except Exception as exc:  # noqa: BLE001 - boto/botocore errors of any kind
        raise Unhealthy(f"{site.name}: cannot list {site.url}: {exc}") from None


def ensure_buckets(setup: StorageSetup, site: Site) -> list[str]:
    """Create the inventory's buckets where missing; the names created."""
    api = S3Api(site, setup)
    return [b for b in setup.buckets if api.ensure_bucket(b)]


# -- files and programs on a node -------------------------------------------------------------


def _install(t: Transport, f: RenderedFile) -> None:
    t.write_file(f.path, f.content, mode=f.mode, owner=f.owner)


def _install_pull(setup: StorageSetup, pull: repl.Pull, node: StorageNode) -> None:
    s = pull.settings
    node.transport.run(repl.config_dir_argv(s))
    node.transport.run(repl.state_dir_argv(s))
    sites = (pull.source, pull.target)
    _install(node.transport, repl.rclone_conf_file(sites, setup.credentials,
                                                          setup.backend, s))
    _install(node.transport, repl.script_file(pull))


def _wait_running(rt: ServiceRuntime, name: str, host: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        st = rt.status(name)
        if st.state is ServiceState.RUNNING:
            return
        if time.monotonic() > deadline or st.state is ServiceState.FAILED:
            raise StepFailed(f"{host}: {name} is {st.state.value} ({st.detail}); log tail:\n"
                             + rt.logs(name, 20))
        time.sleep(0.2)


def start_site(
    setup: StorageSetup, node: StorageNode, server: SiteServer, name: str = SITE_PROGRAM
) -> list[str]:
    """Backend `s3`: define and start `rclone serve s3` on a node (node2 in the upgrade),
    wait until it answers S3, and create the buckets. Returns the buckets created."""
    t = node.transport
    t.run(["install", "-d", "-o", server.user, "-g", server.user, "-m", "0750",
           server.data_dir, server.cache_dir])
    _install(t, site_env_file(server, setup.credentials))
    node.runtime.define(site_spec(server, name))
    node.runtime.start(name)
    _wait_running(node.runtime, name, node.name, START_TIMEOUT_S)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            return ensure_buckets(setup, node.site)
        except Exception as exc:  # noqa: BLE001 - not listening yet, or not answering S3
            if time.monotonic() > deadline:
                raise StepFailed(f"{node.name}: the S3 site at {node.site.url} does not "
                                 f"answer: {exc}") from None
            time.sleep(0.3)


def start_replication(setup: StorageSetup, writer: StorageNode, receiver: StorageNode) -> Check:
    """Replicate from the writer's site into the receiver's site, from now on."""
    if setup.backend == "minio":
        return _minio_add(setup, writer, receiver.site)
    pull = repl.Pull(writer.site, receiver.site, setup.buckets, receiver.replication)
    _install_pull(setup, pull, receiver)
    receiver.runtime.define(repl.replication_spec(pull))
    # define() leaves a program whose definition did not change alone, but the script it
    # runs may have (new source): restart so the loop runs the file just installed.
    receiver.runtime.restart(repl.PROGRAM)
    _wait_running(receiver.runtime, repl.PROGRAM, receiver.name, START_TIMEOUT_S)
    return Check.passed(f"{receiver.name} pulls new objects from {writer.name} every "
                        f"{pull.settings.interval_s}s")


def stop_replication(setup: StorageSetup, node: StorageNode) -> None:
    """Remove the pull program from a node (absent is fine). MinIO: nothing runs per node."""
    if setup.backend == "s3":
        node.runtime.remove(repl.PROGRAM)


@dataclass(frozen=True)
class Reversal:
    writer: str
    receiver: str
    status: str  # "pulling" | "pending" (the old writer is unreachable: set up at rejoin)
    reason: str


def reverse_replication(
    setup: StorageSetup, new_writer: StorageNode, old_writer: StorageNode | None
) -> Reversal:
    """After a failover: stop pulling on the new writer, pull on the old one when reachable.

    MinIO replicates both ways by itself: nothing to reverse."""
    old = old_writer.name if old_writer else "the old writer"
    if setup.backend == "minio":
        return Reversal(new_writer.name, old, "pulling", "MinIO site replication is two-way")
    stop_replication(setup, new_writer)
    if old_writer is None:
        return Reversal(new_writer.name, old, "pending",
                        f"{new_writer.name} takes writes; replication resumes at rejoin")
    check = start_replication(setup, new_writer, old_writer)
    return Reversal(new_writer.name, old_writer.name, "pulling", check.reason)


def _minio_add(setup: StorageSetup, first: StorageNode, second: Site) -> Check:
    sites = (first.site, second)
    t = first.transport
    t.run(["install", "-d", "-m", "0700", setup.mc.config_dir])
    _install(t, minio.mc_config_file(setup.mc, sites, setup.credentials))
    info = minio.parse_replicate_info(
        t.run(minio.replicate_info_argv(setup.mc, first.site), check=False).stdout)
    if minio.replication_configured(info, sites).ok:
        return Check.passed("MinIO site replication already configured")
    added = minio.parse_replicate_add(t.run(minio.replicate_add_argv(setup.mc, *sites)).stdout)
    if not added.ok:
        raise StepFailed(f"{first.name}: {added.reason}")
    info = minio.parse_replicate_info(t.run(minio.replicate_info_argv(setup.mc, first.site)).stdout)
    verdict = minio.replication_configured(info, sites)
    if not verdict.ok:
        raise StepFailed(f"{first.name}: {verdict.reason}")
    return verdict


# -- one-shot copies --------------------------------------------------------------------------


@dataclass(frozen=True)
class CopyReport:
    source: str
    target: str
    buckets: dict[str, CopyStats]

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.buckets.values())

    @property
    def objects(self) -> int:
        return sum(s.transfers for s in self.buckets.values())

    @property
    def elapsed_s(self) -> float:
        return sum(s.elapsed_s for s in self.buckets.values())


def _copy_all(
    setup: StorageSetup, pull: repl.Pull, node: StorageNode, mode: repl.CopyMode,
    progress: Progress,
) -> CopyReport:
    _install_pull(setup, pull, node)
    done: dict[str, CopyStats] = {}
    for bucket in pull.buckets:
        log = f"{pull.settings.state_dir}/{mode}-{bucket}.log"
        node.transport.run(["rm", "-f", log])
        progress(f"{pull.target.name}: copying {bucket} from {pull.source.name} "
                 f"(follow {node.name}:{log})")
        result = node.transport.run(repl.copy_argv(pull, bucket, mode, log_file=log),
                                    timeout=pull.settings.full_timeout_s + 60, check=False)
        stats = parse_rclone_stats(node.transport.read_file(log).decode(errors="replace"))
        if result.returncode != 0 or stats.errors:
            raise CommandFailed(node.name, result.argv, result.returncode or 1,
                                f"{stats.errors} errors; last: {stats.last_error}")
        progress(f"{pull.target.name}: {bucket}: {stats.transfers} objects copied, "
                 f"{stats.checks} already there, {stats.bytes} bytes in {stats.elapsed_s:.1f}s")
        done[bucket] = stats
    return CopyReport(pull.source.name, pull.target.name, done)


def seed_site(
    setup: StorageSetup, writer: Site, receiver: StorageNode, progress: Progress = lambda _: None
) -> CopyReport:
    """Upgrade: copy every existing object to the receiver's site (run there), --checksum.
    Buckets missing on either site are created first (the loop fails on a missing one).
    Not for MinIO: site replication copies existing objects itself, and MinIO refuses to
    join a second site that already holds buckets."""
    if setup.backend == "minio":
        raise UsageError("MinIO: existing objects are copied by site replication, not seeded")
    for site in (writer, receiver.site):
        ensure_buckets(setup, site)
    pull = repl.Pull(writer, receiver.site, setup.buckets, receiver.replication)
    return _copy_all(setup, pull, receiver, "seed", progress)


def reconcile(
    setup: StorageSetup, old_writer: StorageNode, new_writer: Site,
    progress: Progress = lambda _: None,
) -> CopyReport:
    """At rejoin: copy what the old writer acknowledged but never replicated to the new
    writer, adding missing objects only (never overwriting the new writer's)."""
    pull = repl.Pull(old_writer.site, new_writer, setup.buckets, old_writer.replication)
    return _copy_all(setup, pull, old_writer, "reconcile", progress)


# -- the router -------------------------------------------------------------------------------


def router_params(node: StorageNode, peer: Site, writer_name: str) -> s3router.RouterParams:
    if writer_name not in (node.name, peer.name):
        raise StepFailed(f"storage router: writer {writer_name} is neither {node.name} "
                         f"nor {peer.name}")
    writer: s3router.Writer = "local" if writer_name == node.name else "peer"
    return s3router.RouterParams(node=node.name, local=node.site, peer=peer, writer=writer,
                               **dict(node.router))


def install_router(node: StorageNode, peer: Site, writer_name: str) -> s3router.RouterParams:
    """Write the router config (checked with `nginx -t` before it replaces the old one), then
    start the router or reload it gracefully. Also the way to move writes after a failover."""
    p = router_params(node, peer, writer_name)
    t = node.transport
    t.run(s3router.prefix_dirs_argv(p))
    f = s3router.router_conf_file(p)
    candidate = f"{p.config_path}.new"
    t.write_file(candidate, f.content, mode=f.mode)
    try:
        t.run(s3router.config_test_argv(p, candidate))
    except CommandFailed:
        t.run(["rm", "-f", candidate])
        raise
    t.run(["mv", "-f", candidate, p.config_path])
    if node.runtime.status(s3router.PROGRAM).state is ServiceState.RUNNING:
        _reload_router(t, p)
    else:
        node.runtime.define(s3router.router_spec(p))
        node.runtime.start(s3router.PROGRAM)
        _wait_running(node.runtime, s3router.PROGRAM, node.name, START_TIMEOUT_S)
    return p


def _reload_router(t: Transport, p: s3router.RouterParams) -> None:
    """Reload and wait until no worker with the old config accepts a connection: after a
    failover, no new write may still go to the old writer."""
    master = int(t.read_file(p.pid_path).decode().strip())
    before = s3router.parse_workers(t.run(s3router.workers_argv(master)).stdout)
    t.run(s3router.reload_argv(p))
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        now = s3router.parse_workers(t.run(s3router.workers_argv(master), check=False).stdout)
        if s3router.reload_done(before, now):
            return
        if time.monotonic() > deadline:
            raise StepFailed(f"{t.name}: nginx router did not take the new config within "
                             f"{START_TIMEOUT_S:g}s (workers {now})")
        time.sleep(0.1)


# -- verification -----------------------------------------------------------------------------


def check_replication(
    setup: StorageSetup, writer: Site, reader: Site, *, timeout_s: float = 60.0,
    size: int = 4096, bucket: str | None = None, keep: bool = False,
) -> canary_mod.ReadBack:
    """`hapair check`: write a canary on the writer, read it back on the reader."""
    bucket = bucket or setup.buckets[0]
    token = secrets.token_hex(8)
    key = canary_mod.canary_key(time.time(), token)
    body = canary_mod.canary_body(token, size)
    w, r = S3Api(writer, setup), S3Api(reader, setup)
    w.put(bucket, key, body)
    acked = time.monotonic()
    try:
        return canary_mod.read_back(key, writer.name, reader.name, body,
                                    lambda: r.get(bucket, key), acked_at=acked,
                                    timeout_s=timeout_s)
    finally:
        if not keep:  # deletes are not replicated: clean both sites
            for api in (w, r):
                # Best effort: a leftover canary is ignored by backlog reports.
                with contextlib.suppress(Exception):
                    api.delete(bucket, key)


def backlog(setup: StorageSetup, writer: Site, other: Site, now: float | None = None) -> Backlog:
    """`hapair status`: what `other` lacks of `writer` (missing, or different size/MD5)."""
    w, o = _listing(setup, writer), _listing(setup, other)
    return compare(writer.name, w, other.name, o, now=time.time() if now is None else now,
                   ignore_prefix=canary_mod.PREFIX)


def site_totals(setup: StorageSetup, sites: Iterable[Site]) -> list[Totals]:
    return [totals(s.name, setup.buckets, _listing(setup, s)) for s in sites]


def replication_status(
    setup: StorageSetup, receiver: StorageNode, writer: str, *, max_lag_s: float | None = None,
    now: float | None = None,
) -> Check:
    """The pull loop's own account: pulling from the right site, last good pass recent."""
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
                             source=writer, max_lag_s=limit)


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
