"""Config files and service definitions of the single-server "before" stack (pure).

Rendered from the lab inventory's values; tested as data. No secret ever lands in a command
line or a ServiceSpec environment: services read them from 0600/0640 files.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from hapair.components.scram import sql_literal
from hapair.exec.runtime import ServiceSpec
from hapair.lab.config import SHARED_VENV

PG_BIN = "/usr/lib/postgresql/15/bin"
PG_DATA = "/var/lib/postgresql/15/main"
REDIS_CONF = "/etc/redis/redis.conf"
S3_USER = "hapair-s3"
S3_ENV = "/etc/hapair/s3.env"
S3_DATA = "/var/lib/hapair/s3"
S3_CACHE = "/var/lib/hapair/s3-cache"
CMS_DIR = "/opt/cms"
BACKEND_ENV = "/opt/cms/backend.env"
NGINX_CONF = "/etc/nginx/nginx.conf"
CLIENT_MAX_BODY = "64m"  # above the CMS's default media limit (50 MiB)

_env = Environment(
    loader=PackageLoader("hapair.lab", "templates"),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


def render(template: str, **values: Any) -> str:
    return _env.get_template(template).render(**values)


@dataclass(frozen=True)
class Node:
    """What the renderers need to know about the single server."""

    address: str  # the host's own address
    service_address: str  # the site's address (nginx listens only there)
    pg_port: int = 5432
    redis_port: int = 6379
    s3_port: int = 9000
    backend_port: int = 8000
    frontend_port: int = 3000
    http_port: int = 80


# SQL arrives on stdin (the channel for anything secret-adjacent), as the postgres superuser.
PSQL_STDIN = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "/run/postgresql",
              "-d", "postgres", "-f", "-"]  # fmt: skip


def initdb_argv() -> list[str]:
    # Debian/Docker defaults otherwise (no data checksums: the "before" server had none).
    return [f"{PG_BIN}/initdb", "-D", PG_DATA, "--auth-local=peer", "--auth-host=scram-sha-256",
            "--encoding=UTF8", "--locale=C.UTF-8"]  # fmt: skip


def postgres_conf(node: Node) -> str:
    return render(
        "postgresql.conf.j2", listen_addresses=f"localhost,{node.address}", port=node.pg_port
    )


def postgres_roles_sql(owner: str, database: str, owner_verifier: str, su_verifier: str) -> str:
    """Idempotent SQL (fed to psql on stdin): the app's owner role and its database."""
    q_owner, q_db = _ident(owner), _ident(database)
    return "\n".join(
        [
            f"SELECT 'CREATE ROLE {q_owner} LOGIN' WHERE NOT EXISTS "
            f"(SELECT FROM pg_roles WHERE rolname = {sql_literal(owner)})\\gexec",
            f"ALTER ROLE {q_owner} LOGIN PASSWORD {sql_literal(owner_verifier)};",
            f"SELECT 'CREATE DATABASE {q_db} OWNER {q_owner}' WHERE NOT EXISTS "
            f"(SELECT FROM pg_database WHERE datname = {sql_literal(database)})\\gexec",
            f"ALTER ROLE postgres PASSWORD {sql_literal(su_verifier)};",
            "",
        ]
    )


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def redis_conf(node: Node, password: str) -> str:
    return render(
        "redis.conf.j2", binds=["127.0.0.1", node.address], port=node.redis_port, password=password
    )


def nginx_conf(node: Node, routes: dict[str, list[str]]) -> str:
    return render(
        "nginx.conf.j2",
        listen=node.service_address,
        port=node.http_port,
        backend_port=node.backend_port,
        frontend_port=node.frontend_port,
        client_max_body_size=CLIENT_MAX_BODY,
        routes=route_table(routes),
    )


def route_table(routes: dict[str, list[str]]) -> list[dict[str, str]]:
    """Inventory routes → nginx prefix locations. `/` is always the frontend's catch-all;
    a prefix listed for both upstreams is an error rather than a silent choice."""
    seen: dict[str, str] = {}
    for upstream in ("backend", "frontend"):
        for prefix in routes.get(upstream, []):
            if seen.get(prefix, upstream) != upstream:
                raise ValueError(f"route {prefix} is listed for both backend and frontend")
            seen[prefix] = upstream
    seen.setdefault("/", "frontend")
    return [{"prefix": p, "upstream": u} for p, u in sorted(seen.items())]


def env_file(values: dict[str, str]) -> str:
    """KEY=VALUE lines, values single-quoted for sh (`set -a; . FILE`) and the CMS parser."""
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items())


def backend_env(node: Node, secrets: dict[str, str], allowed_hosts: list[str]) -> dict[str, str]:
    return {
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(node.pg_port),
        "POSTGRES_DB": "cms",
        "POSTGRES_USER": "cms",
        "POSTGRES_PASSWORD": secrets["postgres_password"],
        "REDIS_URL": f"redis://:{secrets['redis_password']}@127.0.0.1:{node.redis_port}/0",
        "MINIO_ENDPOINT": f"127.0.0.1:{node.s3_port}",
        "MINIO_ACCESS_KEY": secrets["s3_access_key"],
        "MINIO_SECRET_KEY": secrets["s3_secret_key"],
        "MINIO_USE_SSL": "false",
        "MINIO_BUCKET_PUBLIC": "media-public",
        "MINIO_BUCKET_PRIVATE": "media-private",
        "DJANGO_SECRET_KEY": secrets["django_secret_key"],
        "DJANGO_ALLOWED_HOSTS": ",".join(allowed_hosts),
    }


def s3_env(secrets: dict[str, str]) -> dict[str, str]:
    # rclone reads every flag from RCLONE_<FLAG>, list flags as CSV: the pair is one quoted
    # CSV field. The key pair never appears in argv.
    return {"RCLONE_AUTH_KEY": f'"{secrets["s3_access_key"]},{secrets["s3_secret_key"]}"'}


# -- service definitions ---------------------------------------------------------------------


def postgres_spec() -> ServiceSpec:
    return ServiceSpec(
        name="postgres",
        command=(f"{PG_BIN}/postgres", "-D", PG_DATA),
        user="postgres",
        stop_signal="INT",  # fast shutdown: clean, and quick
        stop_wait_secs=60,
        priority=100,
    )


def redis_spec() -> ServiceSpec:
    return ServiceSpec(
        name="redis",
        command=("/usr/bin/redis-server", REDIS_CONF),
        user="redis",
        directory="/var/lib/redis",
        stop_wait_secs=30,
        priority=100,
    )


def s3_spec(node: Node) -> ServiceSpec:
    rclone = (
        f"exec {SHARED_VENV}/bin/rclone serve s3 "
        f"--addr 127.0.0.1:{node.s3_port} --addr {node.address}:{node.s3_port} "
        f"--config /dev/null --cache-dir {S3_CACHE} {S3_DATA}"
    )
    return ServiceSpec(
        name="s3",
        # The env file is read by a tiny wrapper so the credentials never sit in argv.
        command=("sh", "-c", f"set -a; . {S3_ENV}; {rclone}"),
        user=S3_USER,
        directory=S3_DATA,
        environment={"HOME": "/var/lib/hapair"},
        stop_wait_secs=30,
        priority=100,
    )


def backend_spec(node: Node) -> ServiceSpec:
    return ServiceSpec(
        name="backend",
        command=(
            f"{SHARED_VENV}/bin/gunicorn",
            "-c",
            f"{CMS_DIR}/backend/gunicorn.conf.py",
            "cms_backend.wsgi:application",
            "--bind",
            f"127.0.0.1:{node.backend_port}",
            "--bind",
            f"{node.address}:{node.backend_port}",
            "--access-logfile",
            "-",
        ),
        user="www-data",
        directory=f"{CMS_DIR}/backend",
        environment={"CMS_ENV_FILE": BACKEND_ENV},
        stop_wait_secs=30,
        priority=300,
    )


def frontend_spec(node: Node) -> ServiceSpec:
    return ServiceSpec(
        name="frontend",
        command=("/usr/bin/node", f"{CMS_DIR}/frontend/server.js"),
        user="www-data",
        directory=f"{CMS_DIR}/frontend",
        environment={
            "PORT": str(node.frontend_port),
            "HOST": f"127.0.0.1,{node.address}",
            "BACKEND_URL": f"http://127.0.0.1:{node.backend_port}",
        },
        stop_wait_secs=30,
        priority=400,
    )


def nginx_spec() -> ServiceSpec:
    return ServiceSpec(
        name="nginx",
        command=("/usr/sbin/nginx", "-c", NGINX_CONF, "-g", "daemon off;"),
        user="root",  # the master binds :80; workers run as www-data (nginx.conf `user`)
        stop_signal="QUIT",  # graceful: finish requests in flight
        stop_wait_secs=30,
        priority=500,
    )
