"""The end of a compose rollback: the single server's checks in the user's own containers
(PostgreSQL a writable primary with no standby and no slot, Redis a master answering the
password, the app running from the original compose file), no container of hapair's project
on any host (nor of the user's project on the peer), and the upgrade's journal retired so
`hapair upgrade` can run again later."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hapair.compose.yamlio import load_plain
from hapair.exec.journal import History
from hapair.plan.step import Check, Fn, Step, StepContext, StepKind
from hapair.workflows.rollback.model import upgrade_archive_name
from hapair.workflows.rollback.verify import retire_upgrade_journal
from hapair.workflows.rollback_compose.model import info_field, sid
from hapair.workflows.rollback_compose.setup import ComposeRollback, containers
from hapair.workflows.upgrade.stepkit import guarded

# pg_current_xact_id() assigns a transaction id: it fails on a server in recovery (a write).
PG_FACTS_SQL = ("SELECT pg_is_in_recovery(), current_setting('synchronous_standby_names'), "
                "(SELECT count(*) FROM pg_replication_slots), pg_current_xact_id() IS NOT NULL")
PG_SINGLE = {"in_recovery": "f", "synchronous_standby_names": "", "slots": "0",
             "writable": "t"}


def single_server_facts(cr: ComposeRollback, ctx: StepContext) -> dict[str, Any]:
    """What the single-server checks observed (also the report's body)."""
    t, project = cr.target, cr.compose(cr.target).project
    ok, out = cr.sql(ctx, "postgres", PG_FACTS_SQL)
    values = (out.split("|") if ok else []) + ["?"] * 4
    pg = dict(zip(PG_SINGLE, values[:4], strict=True)) | ({} if ok else {"error": out})
    redis = cr.redis_cli(ctx, "app", "PING", "INFO replication")
    try:
        current = ctx.on(t).read_file(cr.compose_file).decode()
    except FileNotFoundError:
        current = ""
    backend = cr.compose(t).services.backend
    app = sorted({*cr.recreate, *([backend] if backend else [])})
    return {
        "postgres": pg,
        "redis": {"pong": "PONG" in redis.split(), "role": info_field(redis, "role")},
        "app": {s: bool(containers(ctx, t, project, s)) for s in app},
        "compose_file_restored": current == cr.original,
    }


def single_server_problems(facts: dict[str, Any]) -> list[str]:
    problems = []
    pg = facts["postgres"]
    if {k: pg.get(k) for k in PG_SINGLE} != PG_SINGLE:
        problems.append(f"postgres {pg}")
    if facts["redis"] != {"pong": True, "role": "master"}:
        problems.append(f"redis {facts['redis']}")
    problems += [f"{s} does not run" for s, up in facts["app"].items() if not up]
    if not facts["compose_file_restored"]:
        problems.append("the compose file is not the pre-upgrade one")
    return problems


def pair_containers(cr: ComposeRollback, ctx: StepContext) -> dict[str, list[str]]:
    """Per host, the running containers of hapair's project (on the peer: of the user's
    project too)."""
    found = {}
    for host in cr.all_hosts:
        names = containers(ctx, host, cr.hapair_project(host))
        if host == cr.peer:
            names += containers(ctx, host, cr.compose(host).project)
        found[host] = names
    return found


def volumes_left(cr: ComposeRollback, ctx: StepContext) -> dict[str, list[str]]:
    """What stays on disk, per host: hapair's own volumes (etcd data, Sentinel and Redis
    configs) and, on the peer, the data volumes the upgrade created for its replicas."""
    out: dict[str, list[str]] = {}
    for host in cr.all_hosts:
        t = ctx.on(host)
        names = t.run(["docker", "volume", "ls", "-q", "--filter",
                       f"label=com.docker.compose.project={cr.hapair_project(host)}"],
                      check=False, timeout=30).stdout.split()
        if host == cr.peer:
            try:
                bundle = load_plain(t.read_file(cr.hapair_file(host)).decode())
            except FileNotFoundError:
                bundle = {}
            external = sorted(str(v.get("name", k)) for k, v in
                              (bundle.get("volumes") or {}).items()
                              if isinstance(v, dict) and v.get("external"))
            names += [v for v in external
                      if t.run(["docker", "volume", "inspect", v], check=False,
                               timeout=30).ok]
        out[host] = names
    return out


def verify_steps(cr: ComposeRollback, runs_root: Path) -> list[Step]:
    t = cr.target

    def single(ctx: StepContext) -> Check:
        problems = single_server_problems(single_server_facts(cr, ctx))
        return Check(not problems, "; ".join(problems) or
                     "PostgreSQL a writable primary (no sync standby, no slot), Redis a master, "
                     "the app running from the original compose file")

    def nothing_left(ctx: StepContext) -> Check:
        left = {h: n for h, n in pair_containers(cr, ctx).items() if n}
        return Check(not left, f"still running: {left}" if left else
                     f"no container of hapair runs on {', '.join(cr.all_hosts)}")

    def retire(_ctx: StepContext) -> None:
        retire_upgrade_journal(runs_root)

    def retired(_ctx: StepContext) -> Check:
        h = History.load(runs_root, "upgrade")
        return Check(not h.runs, "the upgrade journal is retired" if not h.runs
                     else f"{runs_root}/upgrade still holds {len(h.runs)} run(s)")

    return [
        Step(id=sid(t, "verify-single-server"), host=t, kind=StepKind.PROBE,
             reason="the single server's own containers hold the data and answer",
             verify=guarded("single-server checks", single), settle_timeout=30,
             poll_interval=2),
        Step(id=sid(t, "verify-nothing-of-the-pair"), host=t, kind=StepKind.PROBE,
             reason="no container of hapair's project runs on any host (docker's labels)",
             verify=guarded("no hapair container running", nothing_left)),
        Step(id=f"rollback/{t}/journal.upgrade-retired", host=t, kind=StepKind.COMMAND,
             reason="the pair is rolled back: the upgrade's journal is kept under another name "
                    "so `hapair upgrade` starts afresh later",
             action=Fn(f"rename {runs_root}/upgrade to {upgrade_archive_name('<run>')}",
                       retire),
             verify=guarded("the upgrade journal is retired", retired)),
    ]
