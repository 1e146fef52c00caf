"""The single-server "before" stack on node1, as a careful admin would set it up.

PostgreSQL 15, Redis 7, an S3 server (rclone serve s3) standing in for MinIO, the reference
CMS (Django backend under gunicorn, node frontend) and nginx on the service address, all as
real processes under node1's supervisord, defined through hapair's SupervisorRuntime.
Provisioning enters node1 with LabHostTransport (nsenter); nothing here uses SSH.
"""

from __future__ import annotations

import shutil
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from hapair.components.scram import scram_sha256_verifier
from hapair.errors import StepFailed, UsageError
from hapair.exec.runtime import ServiceSpec, ServiceState
from hapair.exec.supervisor import SupervisorRuntime
from hapair.lab import access, local, procs
from hapair.lab import stack_render as r
from hapair.lab.config import FIRST_SERVICE_OWNER, LabConfig
from hapair.lab.transport import LabHostTransport

Say = Callable[[str], None]
REPO_CMS = Path(__file__).resolve().parents[3] / "cms"
PORT_TIMEOUT = 60.0
HEALTH_TIMEOUT = 90.0


def build(cfg: LabConfig, say: Say) -> None:
    host = cfg.host(FIRST_SERVICE_OWNER)
    node = r.Node(address=host.address, service_address=cfg.service_address)
    secrets = access.ensure_secrets(cfg)
    t = LabHostTransport(host.name, cfg.lab_dir)
    rt = SupervisorRuntime(t)
    say(f"{host.name}: PostgreSQL 15")
    _postgres(t, rt, node, secrets)
    say(f"{host.name}: Redis")
    _redis(t, rt, node, secrets)
    say(f"{host.name}: S3 server (rclone serve s3)")
    _s3(t, rt, node, secrets)
    say(f"{host.name}: CMS backend and frontend")
    _cms(cfg, t, rt, node, secrets)
    say(f"{host.name}: nginx on {cfg.service_address}:{node.http_port}")
    _nginx(cfg, t, rt, node)
    _wait_http(f"{cfg.front_door_url}health/", HEALTH_TIMEOUT)
    say(f"front door {cfg.front_door_url} answers /health/ 200")


def _start(rt: SupervisorRuntime, spec: ServiceSpec, address: str, port: int) -> None:
    """Define (supervisord starts it) and wait until its port answers, else show its logs."""
    rt.define(spec)
    rt.start(spec.name)

    def up_or_fatal() -> bool:
        # FATAL: supervisord gave up restarting it; waiting longer cannot help.
        return _port_open(address, port) or rt.status(spec.name).detail.startswith("FATAL")

    procs.wait_until(up_or_fatal, PORT_TIMEOUT, interval=0.5)
    if not _port_open(address, port):
        st = rt.status(spec.name)
        raise StepFailed(
            f"{rt.transport.name}: {spec.name} does not answer on {address}:{port} after "
            f"{PORT_TIMEOUT:g}s ({st.state.value} {st.detail}); log tail:\n"
            + rt.logs(spec.name, 20)
        )

    # Listening is not enough: supervisord must count it as started (past startsecs).
    def running() -> bool:
        return rt.status(spec.name).state is ServiceState.RUNNING

    if not procs.wait_until(running, 15.0, interval=0.5):
        raise StepFailed(f"{rt.transport.name}: {spec.name} is not running")


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return True
    except OSError:
        return False


def _postgres(t: LabHostTransport, rt: SupervisorRuntime, node: r.Node, s: dict[str, str]) -> None:
    if t.run(["test", "-e", f"{r.PG_DATA}/PG_VERSION"], check=False).returncode != 0:
        t.run(["install", "-d", "-o", "postgres", "-g", "postgres", "-m", "0700", r.PG_DATA])
        t.run(r.initdb_argv(), user="postgres", timeout=180)
        conf = t.read_file(f"{r.PG_DATA}/postgresql.conf").decode() + r.postgres_conf(node)
        t.write_file(f"{r.PG_DATA}/postgresql.conf", conf, mode=0o600, owner="postgres:postgres")
        t.write_file(
            f"{r.PG_DATA}/pg_hba.conf",
            r.render("pg_hba.conf.j2"),
            mode=0o600,
            owner="postgres:postgres",
        )
    _start(rt, r.postgres_spec(), node.address, node.pg_port)
    ready = ["pg_isready", "-q", "-h", "/run/postgresql", "-p", str(node.pg_port)]
    if not procs.wait_until(lambda: t.run(ready, check=False).ok, PORT_TIMEOUT, interval=0.5):
        raise StepFailed(f"{t.name}: PostgreSQL does not accept connections")
    sql = r.postgres_roles_sql(
        "cms",
        "cms",
        scram_sha256_verifier(s["postgres_password"]),
        scram_sha256_verifier(s["postgres_superuser_password"]),
    )
    t.run(r.PSQL_STDIN, input=sql, user="postgres")


def _redis(t: LabHostTransport, rt: SupervisorRuntime, node: r.Node, s: dict[str, str]) -> None:
    t.write_file(
        r.REDIS_CONF, r.redis_conf(node, s["redis_password"]), mode=0o640, owner="redis:redis"
    )
    _start(rt, r.redis_spec(), node.address, node.redis_port)


def _s3(t: LabHostTransport, rt: SupervisorRuntime, node: r.Node, s: dict[str, str]) -> None:
    _ensure_system_user(r.S3_USER)
    for path in (r.S3_DATA, f"{r.S3_DATA}/media-public", f"{r.S3_DATA}/media-private", r.S3_CACHE):
        t.run(["install", "-d", "-o", r.S3_USER, "-g", r.S3_USER, "-m", "0750", path])
    t.write_file(r.S3_ENV, r.env_file(r.s3_env(s)), mode=0o600, owner=f"{r.S3_USER}:{r.S3_USER}")
    _start(rt, r.s3_spec(node), node.address, node.s3_port)


def _ensure_system_user(name: str) -> None:
    """A dedicated unprivileged user, as a packaged S3 server would create (machine-wide:
    the hosts share /etc/passwd, like installed packages; `lab down` keeps it)."""
    if local.run(["getent", "passwd", name], check=False).returncode == 0:
        return
    local.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/var/lib/hapair",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ]
    )


def _cms(
    cfg: LabConfig, t: LabHostTransport, rt: SupervisorRuntime, node: r.Node, s: dict[str, str]
) -> None:
    if not (REPO_CMS / "backend" / "manage.py").exists():
        raise UsageError(f"the reference CMS is missing ({REPO_CMS}/backend/manage.py)")
    dest = cfg.host_root(FIRST_SERVICE_OWNER) / "opt" / "cms"
    ignore = shutil.ignore_patterns("__pycache__", ".ruff_cache", "node_modules", "tests")
    for part in ("backend", "frontend"):
        shutil.rmtree(dest / part, ignore_errors=True)
        shutil.copytree(REPO_CMS / part, dest / part, ignore=ignore)
    local.run(["chmod", "-R", "u=rwX,go=rX", str(dest)])
    hosts = [cfg.service_address, node.address, "127.0.0.1", "localhost", FIRST_SERVICE_OWNER]
    env = r.env_file(r.backend_env(node, s, hosts))
    t.write_file(r.BACKEND_ENV, env, mode=0o600, owner="www-data:www-data")
    manage = [f"{r.SHARED_VENV}/bin/python", f"{r.CMS_DIR}/backend/manage.py"]
    cms_env = {"CMS_ENV_FILE": r.BACKEND_ENV}
    # Once, explicitly: never on every start of the app.
    t.run([*manage, "migrate", "--noinput"], user="www-data", env=cms_env, timeout=300)
    t.run([*manage, "ensure_buckets"], user="www-data", env=cms_env, timeout=120)
    _start(rt, r.backend_spec(node), node.address, node.backend_port)
    _start(rt, r.frontend_spec(node), node.address, node.frontend_port)


def _nginx(cfg: LabConfig, t: LabHostTransport, rt: SupervisorRuntime, node: r.Node) -> None:
    routes = {k: list(v) for k, v in access.ROUTES.items()}
    t.write_file(r.NGINX_CONF, r.nginx_conf(node, routes), mode=0o644)
    t.run(["nginx", "-t", "-q", "-c", r.NGINX_CONF])
    _start(rt, r.nginx_spec(), cfg.service_address, node.http_port)


def _wait_http(url: str, timeout: float) -> None:
    last: list[str] = ["no answer"]

    # No proxy, whatever the environment says: lab traffic stays on the lab's bridge.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def ok() -> bool:
        try:
            with opener.open(url, timeout=5) as resp:
                return resp.status == 200
        except urllib.error.HTTPError as exc:
            last[0] = f"HTTP {exc.code}: {exc.read(300).decode(errors='replace')}"
        except OSError as exc:
            last[0] = str(exc)
        return False

    if not procs.wait_until(ok, timeout, interval=1.0):
        raise StepFailed(f"{url} not healthy after {timeout:g}s: {last[0]}")
