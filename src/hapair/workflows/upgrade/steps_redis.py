"""Upgrade phase for Redis: the running master made ready (runtime settings, persisted), a
replica on the standby node, and three Sentinels (node1, node2, witness; quorum 2) verified
with SENTINEL CKQUORUM. All additive: no client sees a change."""

from __future__ import annotations

import redis

from hapair.components.common import Endpoint, SecretValue
from hapair.components.redis.config import (
    redis_argv,
    render_redis_config,
    render_sentinel_config,
    sentinel_argv,
)
from hapair.components.redis.probe import (
    check_ckquorum,
    check_replica_of,
    ckquorum,
    ha_settings_commands,
    parse_ckquorum,
    parse_info_replication,
)
from hapair.exec.runtime import ServiceSpec
from hapair.plan.step import Check, Fn, Run, Step, StepContext, StepKind, Undo, WriteFile
from hapair.workflows.upgrade.params import SENTINEL_PORT, UpgradeParams
from hapair.workflows.upgrade.stepkit import (
    RuntimeFor,
    all_checks,
    file_step,
    guarded,
    service_step,
)

PLAN = "upgrade"


def sid(host: str, name: str) -> str:
    return f"{PLAN}/{host}/{name}"


def client(address: str, port: int, password: SecretValue) -> redis.Redis:
    """A RESP client from the controller; the password goes to the client, never to argv."""
    return redis.Redis(host=address, port=port, password=password.reveal(), socket_timeout=3,
                       socket_connect_timeout=3, decode_responses=True)


def redis_steps(p: UpgradeParams, runtime_for: RuntimeFor) -> list[Step]:
    r = p.inv.services.redis
    primary, standby = p.host(p.names.primary), p.host(p.names.standby)
    master = Endpoint(primary.address, r.port)

    def prepare_master(_ctx: StepContext) -> None:
        with client(primary.address, r.port, r.password) as c:
            for command in ha_settings_commands(primary.address, r.port, r.password):
                c.execute_command(*command.words)

    def master_ready(_ctx: StepContext) -> Check:
        with client(primary.address, r.port, r.password) as c:
            auth = c.config_get("masterauth").get("masterauth", "")
            ok = auth == r.password.reveal()
            return Check(ok, f"{primary.name}: masterauth " + ("set" if ok else "not set"))

    def replica_ready(_ctx: StepContext) -> Check:
        with client(standby.address, r.port, r.password) as c:
            info = parse_info_replication(c.info("replication"))
        return check_replica_of(info, master, standby.name)

    replica = p.redis_replica(standby.name)
    steps = [
        Step(id=sid(primary.name, "redis.ha-settings"), host=primary.name,
             kind=StepKind.RELOAD,
             reason="masterauth and announce settings on the running master (CONFIG SET, then "
                    "CONFIG REWRITE): it can follow a new master after a failover, no restart",
             action=Fn("CONFIG SET masterauth ***, replica-announce-*; CONFIG REWRITE",
                       prepare_master),
             verify=guarded("masterauth is set on the master", master_ready)),
        Step(id=sid(standby.name, "redis.data-dir"), host=standby.name, kind=StepKind.COMMAND,
             reason="Redis keeps its data and AOF in its own directory",
             action=Run(["install", "-d", "-m", "0750", "-o", "redis", "-g", "redis",
                         replica.data_dir]),
             verify=guarded("data dir exists", lambda ctx: Check(
                 ctx.transport.run(["test", "-d", replica.data_dir], check=False).ok,
                 f"{ctx.host}: {replica.data_dir}"))),
        file_step(sid(standby.name, "redis.config"), standby.name,
                  render_redis_config(replica),
                  "Redis on the standby node: a replica of the master, AUTH everywhere"),
        service_step(sid(standby.name, "redis.service"), standby.name,
                     ServiceSpec(name="redis", command=tuple(redis_argv(replica,
                                                                        "/usr/bin/redis-server")),
                                 user="redis", directory=replica.data_dir, stop_wait_secs=30,
                                 priority=100),
                     runtime_for, "the cache/session replica, synced from the master",
                     ready=guarded("the replica's link to the master is up", replica_ready),
                     settle=60),
    ]
    for host in p.sentinel_hosts:
        sp = p.sentinel(host.name)
        conf = render_sentinel_config(sp)
        steps.append(Step(
            id=sid(host.name, "sentinel.config"), host=host.name, kind=StepKind.FILE,
            reason="Sentinel's config, in a writable file (Sentinel rewrites it as it learns)",
            action=WriteFile(conf.path, conf.content, mode=conf.mode, owner=conf.owner),
            # Sentinel rewrites the file: "present and monitoring our master" is the state.
            verify=guarded("sentinel.conf monitors the master", lambda ctx, c=conf, n=sp: Check(
                f"sentinel monitor {n.master_name}".encode() in ctx.transport.read_file(c.path),
                f"{ctx.host}: {c.path} monitors {n.master_name}")),
            undo=Undo(Run(["rm", "-f", conf.path]))))
        steps.append(service_step(
            sid(host.name, "sentinel.service"), host.name,
            ServiceSpec(name="sentinel", command=tuple(sentinel_argv(sp, "/usr/bin/redis-server")),
                        user="redis", directory=sp.data_dir, stop_wait_secs=30, priority=110),
            runtime_for, "one of three Sentinels: two of them must agree before a failover"))
    last = p.sentinel_hosts[-1]

    def quorum(_ctx: StepContext) -> Check:
        for h in p.sentinel_hosts:
            with client(h.address, SENTINEL_PORT, p.sentinel_password) as c:
                try:
                    reply = c.execute_command(*ckquorum(p.sentinel_master_name).words)
                except redis.ResponseError as exc:
                    reply = str(exc)
            result = check_ckquorum(parse_ckquorum(reply), len(p.sentinel_hosts))
            if not result.ok:
                return Check(False, f"{h.name}: {result.reason}")
        return Check(True, f"SENTINEL CKQUORUM OK on all {len(p.sentinel_hosts)} Sentinels")

    steps.append(Step(
        id=sid(last.name, "sentinel.quorum"), host=last.name, kind=StepKind.PROBE,
        reason="every Sentinel sees the master and enough peers to authorise a failover",
        verify=all_checks("CKQUORUM", guarded("SENTINEL CKQUORUM", quorum)),
        settle_timeout=60, poll_interval=2))
    return steps
