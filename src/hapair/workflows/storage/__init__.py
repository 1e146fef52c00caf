"""Object-storage workflows: what upgrade, status, check and the drill call.

Commands on the nodes go through their Transport and ServiceRuntime; S3 requests (listings,
canaries) go from the controller straight to each site's endpoint with boto3, bounded by
short timeouts. No caller picks the writing site: each node's write selector follows
Patroni's GET /primary, and each node pulls from its peer (see docs/storage.md).

    setup.py      setup_from_inventory, storage_nodes, StorageSetup, StorageNode
    s3api.py      S3Api, ensure_buckets (controller → site)
    nodeops.py    start_site (backend s3: rclone serve s3 on a node)
    replicate.py  start_two_way, start_replication, stop_replication (pull programs / mc)
    copies.py     seed_site (upgrade), reconcile (by hand) -> CopyReport
    routing.py    install_routing = install_writer (HAProxy) + install_router (nginx)
    verify.py     check_replication (canary), backlog, site_totals, replication_status,
                  media_rpo, media_after_failover (drill)
"""

from hapair.workflows.storage.copies import CopyReport, reconcile, seed_site
from hapair.workflows.storage.nodeops import start_site
from hapair.workflows.storage.replicate import (
    pull_for,
    start_replication,
    start_two_way,
    stop_replication,
)
from hapair.workflows.storage.routing import (
    install_router,
    install_routing,
    install_writer,
    router_params,
    writer_params,
)
from hapair.workflows.storage.s3api import S3Api, ensure_buckets, listing
from hapair.workflows.storage.setup import (
    START_TIMEOUT_S,
    Progress,
    StorageNode,
    StorageSetup,
    setup_from_inventory,
    storage_nodes,
)
from hapair.workflows.storage.verify import (
    backlog,
    check_replication,
    media_after_failover,
    media_rpo,
    replication_status,
    site_totals,
)

__all__ = [
    "START_TIMEOUT_S",
    "CopyReport",
    "Progress",
    "S3Api",
    "StorageNode",
    "StorageSetup",
    "backlog",
    "check_replication",
    "ensure_buckets",
    "install_router",
    "install_routing",
    "install_writer",
    "listing",
    "media_after_failover",
    "media_rpo",
    "pull_for",
    "reconcile",
    "replication_status",
    "router_params",
    "seed_site",
    "setup_from_inventory",
    "site_totals",
    "start_replication",
    "start_site",
    "start_two_way",
    "stop_replication",
    "storage_nodes",
    "writer_params",
]
