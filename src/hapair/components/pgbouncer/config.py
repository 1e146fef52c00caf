"""PgBouncer configuration and userlist.

Port: 127.0.0.1:6432 (PgBouncer's customary port); its upstream is the local router
(127.0.0.1:5433). Pool mode defaults to `transaction`: PAUSE waits until every server
connection is released, which in `session` mode means until every client disconnects — never,
with Django's persistent connections. Transaction pooling needs the app to avoid session
state across transactions (Django: DISABLE_SERVER_SIDE_CURSORS = True; no session-level
SET/advisory locks outside a transaction). Use `session` when the app cannot, and accept that
PAUSE then only helps with short-lived connections.

The userlist holds, per user, a plaintext password or the server's own SCRAM verifier
(`SCRAM-SHA-256$…` from pg_authid): with a verifier PgBouncer can still log in to PostgreSQL,
because the client's SCRAM exchange is passed through. Either way it is a secret: 0600.
PgBouncer refuses to run as root: run it as the postgres user, which owns both files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hapair.components.common import (
    Endpoint,
    RenderedFile,
    SecretValue,
    render_template,
    require_abs_path,
    require_ip,
    require_name,
    require_port,
    require_positive,
    require_secret_text,
    unique,
)
from hapair.errors import UsageError


@dataclass(frozen=True)
class PgBouncerUser:
    name: str
    secret: SecretValue = field(repr=False)  # plaintext password or SCRAM verifier

    def __post_init__(self) -> None:
        require_name(self.name, "pgbouncer user name")


@dataclass(frozen=True)
class PgBouncerParams:
    node_name: str
    databases: tuple[str, ...]
    users: tuple[PgBouncerUser, ...]  # app users AND the admin user
    admin_user: str  # may run PAUSE/RESUME/SHOW on the `pgbouncer` admin database
    upstream: Endpoint = Endpoint("127.0.0.1", 5433)  # the local router
    listen: str = "127.0.0.1"
    port: int = 6432
    pool_mode: Literal["transaction", "session"] = "transaction"
    pool_size: int = 20
    max_client_conn: int = 500
    query_wait_timeout: int = 30
    config_path: str = "/etc/pgbouncer/pgbouncer.ini"
    userlist_path: str = "/etc/pgbouncer/userlist.txt"
    owner: str = "postgres"

    def __post_init__(self) -> None:
        require_name(self.node_name, "pgbouncer node_name")
        if not self.databases:
            raise UsageError("pgbouncer databases: at least one")
        for db in self.databases:
            require_name(db, "pgbouncer database")
        unique(list(self.databases), "pgbouncer databases")
        unique([u.name for u in self.users], "pgbouncer users")
        require_name(self.admin_user, "pgbouncer admin_user")
        if self.admin_user not in {u.name for u in self.users}:
            raise UsageError("pgbouncer admin_user must be in users (it needs a password)")
        require_ip(self.listen, "pgbouncer listen")
        require_port(self.port, "pgbouncer port")
        if self.pool_mode not in ("transaction", "session"):
            raise UsageError(f"pgbouncer pool_mode: {self.pool_mode!r}")
        for value, what in [(self.pool_size, "pool_size"),
                            (self.max_client_conn, "max_client_conn"),
                            (self.query_wait_timeout, "query_wait_timeout")]:
            require_positive(value, f"pgbouncer {what}")
        require_abs_path(self.config_path, "pgbouncer config_path")
        require_abs_path(self.userlist_path, "pgbouncer userlist_path")


def render_pgbouncer_config(p: PgBouncerParams) -> RenderedFile:
    text = render_template(
        "pgbouncer/pgbouncer.ini.j2",
        node=p.node_name,
        databases=p.databases,
        upstream=p.upstream,
        listen=p.listen,
        port=p.port,
        userlist_path=p.userlist_path,
        admin_user=p.admin_user,
        pool_mode=p.pool_mode,
        max_client_conn=p.max_client_conn,
        pool_size=p.pool_size,
        query_wait_timeout=p.query_wait_timeout,
    )
    # no secret inside, but it names the userlist and admin: keep it private anyway
    return RenderedFile(p.config_path, text, mode=0o640, owner=p.owner)


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def render_userlist(p: PgBouncerParams) -> RenderedFile:
    lines = [
        f"{_quoted(u.name)} {_quoted(require_secret_text(u.secret, f'pgbouncer {u.name}'))}"
        for u in p.users
    ]
    return RenderedFile(p.userlist_path, "\n".join(lines) + "\n", mode=0o600, owner=p.owner,
                        secret=True)


def pgbouncer_argv(p: PgBouncerParams, binary: str = "pgbouncer") -> list[str]:
    """Foreground (no -d), as the `owner` user; SIGHUP reloads the config."""
    return [binary, p.config_path]
