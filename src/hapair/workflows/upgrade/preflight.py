"""Preflight: read-only. Facts from every host, the inventory's passwords checked against the
running servers (without sending them anywhere), and the risks that refuse the upgrade."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from hapair.exec.journal import History
from hapair.facts.gather import gather
from hapair.facts.snapshot import ClusterFacts
from hapair.plan.risks import PortNeed, Risk, Severity, assess
from hapair.workflows.context import WorkflowContext
from hapair.workflows.native_only import native_only_refusal
from hapair.workflows.upgrade.params import (
    PGBOUNCER_PORT,
    ROUTER_PG_PORT,
    ROUTER_REDIS_PORT,
    SENTINEL_PORT,
    UpgradeParams,
)
from hapair.workflows.upgrade.stepkit import psql_argv
from hapair.workflows.upgrade.steps_pg import _scram_matches


@dataclass(frozen=True)
class Preflight:
    facts: ClusterFacts
    risks: list[Risk]
    resuming: bool

    @property
    def refusals(self) -> list[Risk]:
        return [r for r in self.risks if r.severity is Severity.REFUSE]


def port_needs(p: UpgradeParams) -> tuple[PortNeed, ...]:
    """Ports the new services will bind (checked only before a first run: on a resume they
    are held by hapair's own services)."""
    needs: list[PortNeed] = []
    s = p.inv.services
    for h in p.etcd_hosts:
        needs += [PortNeed(h.name, h.address, 2379, "etcd"),
                  PortNeed(h.name, h.address, 2380, "etcd peers"),
                  PortNeed(h.name, h.address, SENTINEL_PORT, "Sentinel")]
    for h in p.data_nodes:
        needs += [PortNeed(h.name, h.address, 8008, "Patroni REST"),
                  PortNeed(h.name, "127.0.0.1", ROUTER_PG_PORT, "router (PostgreSQL)"),
                  PortNeed(h.name, "127.0.0.1", ROUTER_REDIS_PORT, "router (Redis)"),
                  PortNeed(h.name, "127.0.0.1", PGBOUNCER_PORT, "PgBouncer")]
    standby = p.host(p.names.standby)
    for port, what in [(s.postgres.port, "PostgreSQL"), (s.redis.port, "Redis"),
                       (s.backend.port, "backend"), (s.frontend.port, "frontend"),
                       (p.inv.front_door.port, "HTTP load balancer")]:
        needs.append(PortNeed(standby.name, standby.address, port, what))
    return tuple(needs)


def password_risks(ctx: WorkflowContext, p: UpgradeParams) -> list[Risk]:
    """The inventory's passwords must be the ones the running servers use. PostgreSQL: the
    stored SCRAM verifiers are read (peer auth) and checked here; Redis: a PING with AUTH."""
    pg, primary = p.inv.services.postgres, p.names.primary
    risks: list[Risk] = []
    t = ctx.transports[primary]
    for role, secret, key in [(pg.owner, pg.password, "services.postgres.password"),
                              ("postgres", pg.superuser_password,
                               "services.postgres.superuser_password")]:
        res = t.run(psql_argv(pg.database), user="postgres", check=False, timeout=30,
                    input=f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'")
        verifier = res.stdout.strip()
        if not res.ok:
            risks.append(Risk(Severity.REFUSE, "pg-unreachable", primary,
                              f"{primary}: cannot query PostgreSQL as postgres: "
                              f"{res.stderr.strip()[:200]}"))
            return risks
        if not verifier.startswith("SCRAM-SHA-256$") or not _scram_matches(
                verifier, secret.reveal()):
            risks.append(Risk(Severity.REFUSE, "pg-password", primary,
                              f"{key}: wrong password for role {role} on {primary} "
                              f"(or the role has no SCRAM password)"))
    r = p.inv.services.redis
    try:
        with redis.Redis(host=p.host(primary).address, port=r.port, password=r.password.reveal(),
                         socket_timeout=3, socket_connect_timeout=3) as c:
            c.ping()
    except redis.AuthenticationError:
        risks.append(Risk(Severity.REFUSE, "redis-password", primary,
                          f"services.redis.password: Redis on {primary} refused it"))
    except (redis.RedisError, OSError) as exc:
        risks.append(Risk(Severity.REFUSE, "redis-unreachable", primary,
                          f"{primary}: Redis not reachable at its private address: {exc}"))
    return risks


def run_preflight(ctx: WorkflowContext, p: UpgradeParams) -> Preflight:
    refusal = native_only_refusal(p.inv, "`hapair upgrade`")
    if refusal is not None:  # refused before any probe: the native probes mean nothing there
        return Preflight(ClusterFacts({}), [Risk(Severity.REFUSE, "compose-runtime", None,
                                                 refusal)], False)
    pg = p.inv.services.postgres
    resuming = bool(History.load(ctx.runs_root, "upgrade").applied())
    facts = gather(ctx.transports, postgres_hosts={h.name for h in p.data_nodes},
                   pg_bin_dir=pg.bin_dir, pg_data_dir=pg.data_dir)
    risks = assess(facts, primary=p.names.primary, standby=p.names.standby,
                   witness=p.names.witness, data_dir=pg.data_dir,
                   port_needs=() if resuming else port_needs(p))
    if resuming:
        # node2's data directory is ours from the earlier run, not a stranger's.
        risks = [r for r in risks if r.code != "standby-has-data"]
    if not any(r.code == "unreachable" for r in risks):
        risks += password_risks(ctx, p)
    return Preflight(facts, risks, resuming)
