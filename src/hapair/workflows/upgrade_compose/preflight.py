"""Compose upgrade preflight: read-only. Every host has a compose CLI; node1's PostgreSQL and
Redis run and take the inventory's passwords; node1's data volume exists; node2 holds no data
volume hapair would have to create (it never reuses or replaces data it did not make); the
generated files pass their invariant checks."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from hapair.compose.generate import check_bundle
from hapair.errors import HapairError
from hapair.exec.runtime import ServiceState
from hapair.plan.risks import Risk, Severity
from hapair.plan.step import StepContext
from hapair.workflows.context import WorkflowContext
from hapair.workflows.upgrade.stepkit import psql_argv
from hapair.workflows.upgrade.steps_pg import _scram_matches
from hapair.workflows.upgrade_compose.setup import ComposeUpgrade


def compose_preflight(ctx: WorkflowContext, cu: ComposeUpgrade, *, resuming: bool
                      ) -> list[Risk]:
    sctx = StepContext(cu.primary, ctx.transports)
    risks = [Risk(Severity.REFUSE, "compose-invariant", b.host.name, str(v))
             for b in cu.bundles.values() for v in check_bundle(b)]
    for host in (cu.primary, cu.standby, cu.witness):
        risks += _guard(host, "compose-cli", partial(_cli, cu, sctx, host))
    if any(r.code == "compose-cli" for r in risks):
        return risks  # nothing else can be asked
    if not resuming:  # after a first run, node1's stack is hapair's and node2 has our volumes
        risks += _guard(cu.primary, "pg-unreachable", lambda: _postgres(cu, sctx))
        risks += _guard(cu.primary, "redis-unreachable", lambda: _redis(cu, sctx))
        risks += _guard(cu.standby, "standby-has-data", lambda: _node2_volumes(cu, sctx))
    risks += _guard(cu.primary, "pg-volume", lambda: _pg_volume(cu, sctx))
    return risks


def _guard(host: str, code: str, probe: Callable[[], list[Risk]]) -> list[Risk]:
    try:
        return probe()
    except (HapairError, OSError) as exc:
        text = str(exc)
        return [Risk(Severity.REFUSE, code, host,
                     text if text.startswith(f"{host}:") else f"{host}: {text}")]


def _cli(cu: ComposeUpgrade, sctx: StepContext, host: str) -> list[Risk]:
    cu.runtime(sctx, host).project("hapair").cli()  # Refused (no CLI) becomes the risk
    return []


def _postgres(cu: ComposeUpgrade, sctx: StepContext) -> list[Risk]:
    host, pg = cu.primary, cu.p.inv.services.postgres
    rt = cu.runtime(sctx, host)
    status = rt.status("postgres")
    if status.state is not ServiceState.RUNNING:
        return [Risk(Severity.REFUSE, "pg-unreachable", host,
                     f"{host}: the PostgreSQL service is {status.detail or status.state.value}")]
    res = rt.shell("postgres").run(
        psql_argv(pg.database), user="postgres", check=False, timeout=30,
        env={"PGUSER": pg.owner},
        input=f"SELECT rolpassword FROM pg_authid WHERE rolname = '{pg.owner}'")
    if not res.ok:
        return [Risk(Severity.REFUSE, "pg-unreachable", host,
                     f"{host}: psql as {pg.owner} failed: {res.stderr.strip()[:200]}")]
    verifier = res.stdout.strip()
    return [Risk(Severity.REFUSE, "pg-password", host,
                 f"{key}: wrong password for role {pg.owner} on {host} (or no SCRAM password)")
            for key, secret in (("services.postgres.password", pg.password),
                                ("services.postgres.superuser_password",
                                 pg.superuser_password))
            if not _scram_matches(verifier, secret.reveal())]


def _redis(cu: ComposeUpgrade, sctx: StepContext) -> list[Risk]:
    host = cu.primary
    service = cu.compose(host).services.redis or "redis"
    app = cu.runtime(sctx, host).project("app")
    res = app.exec(service, ["redis-cli"], check=False, timeout=30,
                   input=f"AUTH {cu.p.inv.services.redis.password.reveal()}\nPING\n")
    if "PONG" in res.stdout.split():
        return []
    return [Risk(Severity.REFUSE, "redis-password", host,
                 f"services.redis.password: {service} on {host} did not answer PONG with it")]


def _pg_volume(cu: ComposeUpgrade, sctx: StepContext) -> list[Risk]:
    res = sctx.on(cu.primary).run(["docker", "volume", "inspect", cu.pg_volume], check=False)
    if res.ok:
        return []
    return [Risk(Severity.REFUSE, "pg-volume", cu.primary,
                 f"{cu.primary}: the data volume {cu.pg_volume} does not exist")]


def _node2_volumes(cu: ComposeUpgrade, sctx: StepContext) -> list[Risk]:
    t = sctx.on(cu.standby)
    found = [v for v in cu.external_volumes(cu.standby)
             if t.run(["docker", "volume", "inspect", v], check=False).ok]
    return [Risk(Severity.REFUSE, "standby-has-data", cu.standby,
                 f"{cu.standby}: volume {v} already exists; hapair creates node2's data volumes "
                 "empty and never reuses one it did not create (remove it after checking)")
            for v in found]
