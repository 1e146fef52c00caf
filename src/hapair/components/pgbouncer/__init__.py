"""PgBouncer (optional) in front of the local router: config, userlist, admin console."""

from hapair.components.pgbouncer.admin import (
    DatabaseState,
    PoolState,
    admin_psql_argv,
    check_paused,
    check_resumed,
    parse_show_databases,
    parse_show_pools,
    pause_sql,
    reconnect_sql,
    resume_sql,
)
from hapair.components.pgbouncer.config import (
    PgBouncerParams,
    PgBouncerUser,
    pgbouncer_argv,
    render_pgbouncer_config,
    render_userlist,
)

__all__ = [
    "DatabaseState",
    "PgBouncerParams",
    "PgBouncerUser",
    "PoolState",
    "admin_psql_argv",
    "check_paused",
    "check_resumed",
    "parse_show_databases",
    "parse_show_pools",
    "pause_sql",
    "pgbouncer_argv",
    "reconnect_sql",
    "render_pgbouncer_config",
    "render_userlist",
    "resume_sql",
]
