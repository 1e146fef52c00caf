"""The local router (HAProxy) and the HAProxy runtime API parser (see config.py)."""

from hapair.components.router.config import (
    RouterBackend,
    RouterParams,
    RouterS3,
    RouterSentinel,
    check_config_argv,
    redis_proxies,
    render_router_config,
    resp_bulk_pair_hex,
    resp_command_hex,
    router_argv,
)
from hapair.components.router.stats import (
    ServerStat,
    check_all_up,
    check_single_up,
    parse_show_stat,
    servers_up,
    set_server_state,
    show_stat_argv,
    stats_command_argv,
)

__all__ = [
    "RouterBackend",
    "RouterParams",
    "RouterS3",
    "RouterSentinel",
    "ServerStat",
    "check_all_up",
    "check_config_argv",
    "check_single_up",
    "parse_show_stat",
    "redis_proxies",
    "render_router_config",
    "resp_bulk_pair_hex",
    "resp_command_hex",
    "router_argv",
    "servers_up",
    "set_server_state",
    "show_stat_argv",
    "stats_command_argv",
]
