"""Compose upgrade: hapair's services brought up in its own project (etcd, Sentinel, the
pair's Redis, the local router, keepalived), each verified by asking the service itself."""

from __future__ import annotations

from collections.abc import Callable

from hapair.compose.generate_configs import REDIS_PORT, SENTINEL_PORT, master_name
from hapair.compose.programs import HAPAIR_SERVICES
from hapair.exec.runtime import ServiceState
from hapair.plan.step import Check, Fn, Step, StepContext, StepKind, Undo, Verify
from hapair.workflows.upgrade.stepkit import all_checks, guarded
from hapair.workflows.upgrade_compose.setup import ComposeUpgrade
from hapair.workflows.upgrade_compose.steps_prepare import sid


def running(cu: ComposeUpgrade, program: str, *, project: str = "hapair",
            service: str | None = None, healthy: bool = True) -> Verify:
    """The program's container runs (`program` of hapair's project, or the user's `service`)
    and, with `healthy`, its health check passes. etcd's cannot until a majority of members
    runs: its steps check the container only, then the cluster's health once all are up."""
    def check(ctx: StepContext) -> Check:
        rt = cu.runtime(ctx, ctx.host)
        status = (rt.status(program) if project == "hapair"
                  else rt.project("app").status(service or program))
        ok = (status.state is ServiceState.RUNNING if healthy
              else status.detail.startswith("running"))
        return Check(ok, f"{ctx.host}: {service or program} is "
                         f"{status.detail or status.state.value}")

    return guarded(f"{service or program} is running", check)


def hapair_service_step(cu: ComposeUpgrade, host: str, program: str, reason: str, *,
                        ready: Verify | None = None, settle: float = 60.0,
                        impact: str = "none", healthy: bool = True) -> Step:
    """One generated service started (`up -d --no-deps hapair-X`), verified running (and
    healthy, unless told otherwise) and, when given, ready; undo removes its container (its
    volumes stay)."""
    service = HAPAIR_SERVICES[program]
    up = running(cu, program, healthy=healthy)
    return Step(id=sid(host, program), host=host, kind=StepKind.NEW_SERVICE, reason=reason,
                client_impact=impact,
                action=Fn(f"up -d --no-deps {service} (project {cu.bundles[host].project})",
                          lambda ctx: cu.runtime(ctx, host).start(program)),
                verify=all_checks(f"{service} runs and is ready", up, ready) if ready else up,
                undo=Undo(Fn(f"rm -s -f {service}",
                             lambda ctx: cu.runtime(ctx, host).remove(program))),
                settle_timeout=settle)


# --- etcd ----------------------------------------------------------------------------------


def etcd_steps(cu: ComposeUpgrade) -> list[Step]:
    hosts = [cu.primary, cu.standby, cu.witness]
    steps = [hapair_service_step(cu, h, "etcd", "etcd member: the witness's vote lets "
                                 "Patroni fail over without a split brain", healthy=False)
             for h in hosts]
    healthy = _in_shell(cu, "etcd", ["etcdctl", "endpoint", "health", "--cluster"],
                        lambda out: out.count("is healthy") == 3, "3 healthy etcd members")
    steps.append(Step(id=sid(cu.witness, "etcd-quorum"), host=cu.witness, kind=StepKind.PROBE,
                      reason="the three members form one cluster", verify=healthy,
                      settle_timeout=60))
    return steps


def _in_shell(cu: ComposeUpgrade, program: str, argv: list[str], accept: Callable[[str], bool],
              what: str, stdin: Callable[[], str] | None = None) -> Verify:
    """A tool in `program`'s container (its input, e.g. an AUTH line, on stdin)."""
    def check(ctx: StepContext) -> Check:
        shell = cu.runtime(ctx, ctx.host).shell(program)
        res = shell.run(argv, input=stdin() if stdin else None, check=False, timeout=30)
        ok = res.ok and accept(f"{res.stdout}\n{res.stderr}")  # etcdctl answers on stderr
        return Check(ok, f"{ctx.host}: {what}: " + ("yes" if ok else
                                                    (res.stderr or res.stdout)[:200].strip()))

    return guarded(what, check)


# --- Redis and Sentinel --------------------------------------------------------------------


def _redis_auth(cu: ComposeUpgrade, *commands: str) -> Callable[[], str]:
    def text() -> str:  # the password on stdin, never in argv
        return "\n".join([f"AUTH {cu.p.inv.services.redis.password.reveal()}", *commands, ""])

    return text


def _sentinel_auth(cu: ComposeUpgrade, *commands: str) -> Callable[[], str]:
    def text() -> str:
        return "\n".join([f"AUTH {cu.p.sentinel_password.reveal()}", *commands, ""])

    return text


def redis_handover_step(cu: ComposeUpgrade) -> Step:
    """node1's Redis data handed to hapair-redis (same volume, rendered config): the user's
    service stops first (it saves its data on a clean stop), then hapair's starts on it."""
    host = cu.primary
    user_redis = cu.compose(host).services.redis or "redis"

    def hand_over(ctx: StepContext) -> None:
        rt = cu.runtime(ctx, host)
        rt.project("app").stop(user_redis)
        rt.start("redis")

    def hand_back(ctx: StepContext) -> None:
        rt = cu.runtime(ctx, host)
        rt.remove("redis")
        rt.project("app").start(user_redis)

    pong = _in_shell(cu, "redis", ["redis-cli", "-p", str(REDIS_PORT)],
                     lambda out: "PONG" in out.split(), "hapair-redis answers with its password",
                     stdin=_redis_auth(cu, "PING"))
    return Step(id=sid(host, "redis-handover"), host=host, kind=StepKind.RESTART,
                reason=f"the pair's Redis (hapair-redis) takes over {user_redis}'s volume with "
                       "a config Sentinel can rewrite; the user's service stays for rollback",
                client_impact="the app cannot reach Redis from this stop until it is recreated "
                              "behind the router (seconds)",
                action=Fn(f"stop {user_redis}; up -d --no-deps hapair-redis", hand_over),
                verify=all_checks("hapair-redis serves the data", running(cu, "redis"), pong),
                undo=Undo(Fn(f"rm -s -f hapair-redis; up -d {user_redis}", hand_back)),
                settle_timeout=60)


def sentinel_steps(cu: ComposeUpgrade) -> list[Step]:
    primary = cu.host(cu.primary).address
    name = master_name(cu.p.inv.cluster)
    knows = _in_shell(cu, "sentinel", ["redis-cli", "-p", str(SENTINEL_PORT)],
                      lambda out: primary in out.split(), f"Sentinel names {primary} master",
                      stdin=_sentinel_auth(cu, f"SENTINEL get-master-addr-by-name {name}"))
    return [hapair_service_step(cu, h, "sentinel", "Sentinel (2 of 3 agree on a Redis "
                                "failover)", ready=knows)
            for h in (cu.primary, cu.standby, cu.witness)]


def redis_replica_step(cu: ComposeUpgrade) -> Step:
    link_up = _in_shell(cu, "redis", ["redis-cli", "-p", str(REDIS_PORT)],
                        lambda out: "role:slave" in out and "master_link_status:up" in out,
                        "a replica with its link to the master up",
                        stdin=_redis_auth(cu, "INFO replication"))
    return hapair_service_step(cu, cu.standby, "redis", "the Redis replica on node2 (async: "
                               "Sentinel promotes it if node1's Redis fails)", ready=link_up,
                               settle=120)


# --- router and keepalived -------------------------------------------------------------------


def router_step(cu: ComposeUpgrade, host: str) -> Step:
    return hapair_service_step(cu, host, "router", "local router on the app's network: "
                               "hapair-router:5433 → the Patroni primary, :6380 → the Redis "
                               "master")


def keepalived_steps(cu: ComposeUpgrade) -> list[Step]:
    nodes = [h for h in (cu.primary, cu.standby)
             if "hapair-keepalived" in (cu.bundles[h].compose.get("services") or {})]
    return [hapair_service_step(cu, h, "keepalived", "the front door's VIP on whichever node "
                                "serves and sees the witness", impact="the VIP appears on node1")
            for h in nodes]
