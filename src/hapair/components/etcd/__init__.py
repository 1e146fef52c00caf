"""etcd (Debian etcd-server 3.4): the 3-member DCS of Patroni — node1, node2 and the witness.

Two data nodes never make a quorum (ARCHITECTURE.md §2), so the witness is the third member.
Members bind to their private addresses (client 2379, peer 2380) and, for probes run on the
host itself, to 127.0.0.1 on the client port. etcd holds no secret here: it is reached only
on the private network; peer/client TLS is a later addition.
"""

from hapair.components.etcd.config import (
    EtcdMember,
    EtcdParams,
    etcd_argv,
    render_etcd_config,
)
from hapair.components.etcd.probe import (
    ETCDCTL_ENV,
    EndpointHealth,
    EndpointStatus,
    MemberInfo,
    check_leader,
    check_members,
    check_quorum,
    endpoint_health_argv,
    endpoint_status_argv,
    member_list_argv,
    parse_endpoint_health,
    parse_endpoint_status,
    parse_member_list,
)

__all__ = [
    "ETCDCTL_ENV",
    "EndpointHealth",
    "EndpointStatus",
    "EtcdMember",
    "EtcdParams",
    "MemberInfo",
    "check_leader",
    "check_members",
    "check_quorum",
    "endpoint_health_argv",
    "endpoint_status_argv",
    "etcd_argv",
    "member_list_argv",
    "parse_endpoint_health",
    "parse_endpoint_status",
    "parse_member_list",
    "render_etcd_config",
]
