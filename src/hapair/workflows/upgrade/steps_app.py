"""Upgrade phases for the application: node1's app re-pointed at PgBouncer and the router
(one graceful gunicorn reload), then the same app deployed on node2 and proven healthy."""

from __future__ import annotations

import re

from hapair.exec.runtime import ServiceState
from hapair.plan.step import Check, Fn, Step, StepContext, StepKind, Undo
from hapair.workflows.upgrade.envfile import parse_env, redis_url_via, set_env
from hapair.workflows.upgrade.params import (
    PGBOUNCER_PORT,
    ROUTER_REDIS_PORT,
    UpgradeParams,
)
from hapair.workflows.upgrade.stepkit import RuntimeFor, all_checks, guarded, http_ok
from hapair.workflows.upgrade.steps_storage import router_endpoint

PLAN = "upgrade"
APP_SERVICES = ("backend", "frontend")


def sid(host: str, name: str) -> str:
    return f"{PLAN}/{host}/{name}"


def routed_env(text: str, node_addresses: tuple[str, ...]) -> str:
    """The app's env with PostgreSQL through PgBouncer and Redis through the local router,
    and both nodes' addresses allowed as Host (either load balancer may send it a request)."""
    values = parse_env(text)
    updates = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(PGBOUNCER_PORT),
               "MINIO_ENDPOINT": router_endpoint(),
               "DJANGO_ALLOWED_HOSTS": _allow(values.get("DJANGO_ALLOWED_HOSTS", ""),
                                              node_addresses)}
    if "REDIS_URL" in values:
        updates["REDIS_URL"] = redis_url_via(values["REDIS_URL"], "127.0.0.1", ROUTER_REDIS_PORT)
    return set_env(text, updates)


def _allow(hosts: str, addresses: tuple[str, ...]) -> str:
    have = [h for h in hosts.split(",") if h]
    return ",".join(have + [a for a in addresses if a not in have])


def _is_routed(text: str, node_addresses: tuple[str, ...]) -> bool:
    values = parse_env(text)
    allowed = values.get("DJANGO_ALLOWED_HOSTS", "").split(",")
    return (values.get("POSTGRES_PORT") == str(PGBOUNCER_PORT)
            and values.get("MINIO_ENDPOINT") == router_endpoint()
            and f"127.0.0.1:{ROUTER_REDIS_PORT}" in values.get("REDIS_URL", "")
            and all(a in allowed for a in node_addresses))


def _workers_newer_than(ctx: StepContext, runtime_for: RuntimeFor, service: str,
                        path: str) -> Check:
    """Every gunicorn worker started after the env file was written: they all read it."""
    status = runtime_for(ctx, ctx.host).status(service)
    if status.state is not ServiceState.RUNNING or status.pid is None:
        return Check(False, f"{ctx.host}: {service} is {status.state.value}")
    t = ctx.transport
    file_age = int(t.run(["sh", "-c", 'echo $(( $(date +%s) - $(stat -c %Y "$1") ))', "sh", path]
                         ).stdout.strip())
    ages = [int(x) for x in t.run(["ps", "-o", "etimes=", "--ppid", str(status.pid)],
                                  check=False).stdout.split()]
    ok = bool(ages) and max(ages) <= file_age
    return Check(ok, f"{ctx.host}: {len(ages)} {service} workers, oldest {max(ages, default=0)} s, "
                     f"env file written {file_age} s ago")


def repoint_app_steps(p: UpgradeParams, runtime_for: RuntimeFor) -> list[Step]:
    host = p.names.primary
    env_path = p.inv.services.backend.env_file or f"{p.inv.services.backend.app_dir}/.env"
    saved = f"{env_path}.hapair-before"
    addresses = tuple(n.address for n in p.data_nodes)

    def repoint(ctx: StepContext) -> None:
        t = ctx.transport
        text = t.read_file(env_path).decode()
        owner = t.run(["stat", "-c", "%U", env_path]).stdout.strip()
        if not _is_routed(text, addresses):
            if not t.run(["test", "-f", saved], check=False).ok:
                t.write_file(saved, text, mode=0o600, owner=owner)
            t.write_file(env_path, routed_env(text, addresses), mode=0o600, owner=owner)
        # gunicorn HUP: new workers (reading the new env file) start, old ones finish their
        # requests and exit. No request is dropped.
        t.run(["supervisorctl", "-c", _supervisor_conf(p, host), "signal", "HUP", "backend"])

    def restore(ctx: StepContext) -> None:
        t = ctx.transport
        owner = t.run(["stat", "-c", "%U", env_path]).stdout.strip()
        t.write_file(env_path, t.read_file(saved), mode=0o600, owner=owner)
        t.run(["supervisorctl", "-c", _supervisor_conf(p, host), "signal", "HUP", "backend"])

    def env_routed(ctx: StepContext) -> Check:
        ok = _is_routed(ctx.transport.read_file(env_path).decode(), addresses)
        return Check(ok, f"{ctx.host}: {env_path} " + ("routes through PgBouncer and the router"
                                                        if ok else "still points at the servers"))

    node = p.host(host)
    # Liveness, not readiness: this step changes how the app connects; whether the database
    # is writable is the hand-over's business (and a resumed run may come here mid-hand-over).
    health = f"http://{node.address}:{p.inv.services.backend.port}/health/liveness/"
    return [Step(
        id=sid(host, "app.via-router"), host=host, kind=StepKind.RELOAD,
        reason="the app reaches PostgreSQL through PgBouncer, Redis and object storage through "
               "the local routers (env file + graceful gunicorn reload)",
        client_impact="none: old workers finish their requests (gunicorn HUP)",
        action=Fn(f"rewrite POSTGRES_* and REDIS_URL in {env_path}; HUP backend", repoint),
        verify=all_checks(
            "the app runs with the routed settings and is healthy",
            guarded("env file routed", env_routed),
            guarded("workers reloaded", lambda ctx: _workers_newer_than(ctx, runtime_for,
                                                                        "backend", env_path)),
            http_ok(health)),
        undo=Undo(Fn(f"restore {env_path} from {saved}; HUP backend", restore),
                  needs=(guarded(f"{saved} exists", lambda ctx: Check(
                      ctx.transport.run(["test", "-f", saved], check=False).ok, saved)),)),
        settle_timeout=60)]


def _supervisor_conf(p: UpgradeParams, host: str) -> str:
    sup = p.host(host).supervisor
    return sup.config if sup else "/etc/supervisor/supervisord.conf"


def _include_dir(p: UpgradeParams, host: str) -> str:
    sup = p.host(host).supervisor
    return sup.include_dir if sup else "/etc/supervisor/conf.d"


def deploy_app_steps(p: UpgradeParams, runtime_for: RuntimeFor) -> list[Step]:
    """The same app on node2: code and env copied from node1, the same supervisor programs
    with node2's address."""
    src, dst = p.host(p.names.primary), p.host(p.names.standby)
    s = p.inv.services
    app_root = s.backend.app_dir.rsplit("/", 1)[0]  # /opt/cms
    env_path = s.backend.env_file or f"{s.backend.app_dir}/.env"

    def copy_code(ctx: StepContext) -> None:
        node1, node2 = ctx.on(src.name), ctx.on(dst.name)
        excl = f"./{env_path.rsplit('/', 1)[1]}"
        blob = node1.run(["sh", "-c", 'tar -C "$1" --exclude="$2" --exclude="$2.*" -czf - . '
                          '| base64 -w0', "sh", app_root, excl], timeout=300).stdout
        node2.run(["sh", "-c", 'mkdir -p "$1" && base64 -d | tar -C "$1" -xzf -', "sh",
                   app_root], input=blob, timeout=300)
        text = node1.read_file(env_path).decode()
        owner = node1.run(["stat", "-c", "%U", env_path]).stdout.strip()
        # node1's env already routes through the local routers (PostgreSQL, Redis and
        # object storage) and allows both addresses: node2 runs with the very same file.
        node2.write_file(env_path, text, mode=0o600, owner=owner)
        for name in APP_SERVICES:
            conf = node1.read_file(f"{_include_dir(p, src.name)}/{name}.conf").decode()
            conf = re.sub(rf"\b{re.escape(src.address)}\b", dst.address, conf)
            node2.write_file(f"{_include_dir(p, dst.name)}/{name}.conf", conf, mode=0o600)
        sup = ["supervisorctl", "-c", _supervisor_conf(p, dst.name)]
        node2.run([*sup, "reread"])
        node2.run([*sup, "update", *APP_SERVICES])

    def remove(ctx: StepContext) -> None:
        for name in APP_SERVICES:
            runtime_for(ctx, dst.name).remove(name)

    backend = f"http://{dst.address}:{s.backend.port}{s.backend.health}"
    frontend = f"http://{dst.address}:{s.frontend.port}{s.frontend.health}"
    return [Step(
        id=sid(dst.name, "app.deploy"), host=dst.name, kind=StepKind.NEW_SERVICE,
        reason="the same backend and frontend on node2 (same code, secret key and settings, "
               "through node2's own router); no migrations: the database is shared",
        action=Fn(f"copy {app_root} and its env file from {src.name}; start "
                  f"{', '.join(APP_SERVICES)}", copy_code),
        verify=all_checks("node2's app is healthy", http_ok(backend), http_ok(frontend)),
        undo=Undo(Fn(f"remove {', '.join(APP_SERVICES)} on {dst.name}", remove)),
        settle_timeout=90, poll_interval=2)]

