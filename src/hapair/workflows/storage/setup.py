"""The storage setup (backend, buckets, keys) and the two data nodes as the workflows drive
them, from the inventory."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hapair.components.storage import minio
from hapair.components.storage import replication as repl
from hapair.components.storage.site import Backend, S3Credentials, Site, require_bucket
from hapair.components.storage.writer import WriteTarget
from hapair.errors import UsageError
from hapair.exec.runtime import ServiceRuntime
from hapair.exec.transport import Transport
from hapair.inventory.model import Inventory
from hapair.workflows.context import WorkflowContext

Progress = Callable[[str], None]
START_TIMEOUT_S = 20.0
PATRONI_PORT = 8008


@dataclass(frozen=True)
class StorageSetup:
    backend: Backend
    buckets: tuple[str, ...]
    credentials: S3Credentials = field(repr=False)
    mc: minio.Mc = minio.Mc()
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 30.0
    max_delay_s: float = 30.0  # the promised replication delay (inventory max_delay_s)

    def __post_init__(self) -> None:
        if self.backend not in ("s3", "minio"):
            raise UsageError(f"storage backend {self.backend!r} is not s3 or minio")
        if not self.buckets:
            raise UsageError("storage: no bucket")
        for bucket in self.buckets:
            require_bucket(bucket, "storage bucket")


@dataclass(frozen=True)
class StorageNode:
    """A data node as these workflows drive it. `replication`, `router` and `writer` override
    paths, ports and binaries (the lab and tests put them elsewhere); `patroni` is where its
    Patroni answers GET /primary (default: the site's address, port 8008)."""

    site: Site
    transport: Transport
    runtime: ServiceRuntime
    replication: repl.ReplicationSettings = repl.ReplicationSettings()
    router: Mapping[str, Any] = field(default_factory=dict)  # RouterParams overrides
    writer: Mapping[str, Any] = field(default_factory=dict)  # WriterParams overrides
    patroni: tuple[str, int] | None = None

    @property
    def name(self) -> str:
        return self.site.name

    @property
    def write_target(self) -> WriteTarget:
        address, port = self.patroni or (self.site.address, PATRONI_PORT)
        return WriteTarget(self.site, address, port)


def setup_from_inventory(inv: Inventory) -> tuple[StorageSetup, tuple[Site, Site]]:
    st = inv.services.storage
    first, second = inv.nodes
    sites = (Site(first.name, first.address, st.port), Site(second.name, second.address, st.port))
    setup = StorageSetup(st.backend, tuple(st.buckets), S3Credentials(st.access_key, st.secret_key),
                         max_delay_s=float(st.max_delay_s))
    return setup, sites


def storage_nodes(
    ctx: WorkflowContext, replication: repl.ReplicationSettings | None = None,
    router: Mapping[str, Any] | None = None,
) -> tuple[StorageSetup, tuple[StorageNode, StorageNode]]:
    """The setup and both data nodes, reached through the context's transports/runtimes."""
    setup, sites = setup_from_inventory(ctx.inventory)
    st = ctx.inventory.services.storage
    settings = replication or repl.ReplicationSettings(interval_s=st.replication_interval_s)
    routes = {"port": st.router_port, "write_to": f"127.0.0.1:{st.writer_port}",
              **dict(router or {})}
    first, second = (StorageNode(s, ctx.transports[s.name], ctx.runtime(s.name), settings,
                                 routes, {"port": st.writer_port}) for s in sites)
    return setup, (first, second)
