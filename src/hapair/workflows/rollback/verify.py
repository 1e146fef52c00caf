"""The end of a rollback: the single server passes the single-node stack's own checks (the
lab's and the CMS contract: front door page from the frontend, /health/ 200 with database,
redis and storage ok, an article written and read back, a session kept in Redis), nothing of
the pair runs on any host, and the upgrade's journal is retired so `hapair upgrade` can run
again later."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx

from hapair.exec.journal import History
from hapair.plan.step import Check, Fn, Step, StepContext, StepKind
from hapair.workflows.rollback.model import (
    PAIR_PROGRAMS,
    PEER_PROGRAMS,
    health_failures,
    leftovers,
    upgrade_archive_name,
)
from hapair.workflows.rollback.params import RollbackParams, sid
from hapair.workflows.upgrade.stepkit import guarded, psql_argv


def _client(rp: RollbackParams) -> httpx.Client:
    return httpx.Client(base_url=rp.front_url, timeout=10, trust_env=False)


def single_node_facts(rp: RollbackParams, ctx: StepContext) -> dict[str, Any]:
    """What the single-node checks observed (also the report's body)."""
    out: dict[str, Any] = {}
    with _client(rp) as c:
        page = c.get("/")
        out["front_page"] = {"status": page.status_code,
                             "served_by": page.headers.get("x-served-by")}
        health = c.get(rp.up.inv.services.backend.health)
        body = health.json() if health.headers.get("content-type", "").startswith(
            "application/json") else {}
        out["health"] = {"status": health.status_code, "problems": health_failures(
            health.status_code, body)}
        title = f"rollback check {time.time_ns()}"
        made = c.post("/api/articles/", json={"title": title, "body": "hapair rollback"})
        got = c.get(f"/api/articles/{made.json()['id']}/") if made.status_code == 201 else None
        out["article"] = {"created": made.status_code, "read_back": got is not None
                          and got.status_code == 200 and got.json().get("title") == title}
        stored = c.post("/api/session/", json={"hapair": "rollback"})
        back = c.get("/api/session/")
        out["session"] = {"stored": stored.status_code,
                          "read_back": back.status_code == 200
                          and back.json().get("hapair") == "rollback"}
    res = ctx.on(rp.target).run(psql_argv(rp.database), user="postgres", check=False,
                                input="SELECT pg_is_in_recovery(), "
                                      "current_setting('synchronous_standby_names'), "
                                      "(SELECT count(*) FROM pg_replication_slots)")
    rec, sync, slots = (res.stdout.strip().split("|") + ["?", "?", "?"])[:3]
    out["postgres"] = {"in_recovery": rec, "synchronous_standby_names": sync, "slots": slots}
    return out


def single_node_problems(facts: dict[str, Any]) -> list[str]:
    problems = []
    fp = facts["front_page"]
    if fp["status"] != 200 or fp["served_by"] != "cms-frontend":
        problems.append(f"front page {fp}")
    problems += [f"/health/ {p}" for p in facts["health"]["problems"]]
    if facts["article"]["created"] != 201 or not facts["article"]["read_back"]:
        problems.append(f"article {facts['article']}")
    if facts["session"]["stored"] != 200 or not facts["session"]["read_back"]:
        problems.append(f"session {facts['session']}")
    pg = facts["postgres"]
    if pg != {"in_recovery": "f", "synchronous_standby_names": "", "slots": "0"}:
        problems.append(f"postgres {pg}")
    return problems


def running_pair_programs(rp: RollbackParams, ctx: StepContext) -> dict[str, list[str]]:
    """Per host, the programs of the pair its supervisor still runs (the peer: any)."""
    found = {}
    for host in rp.all_hosts:
        statuses = [(s.name, s.state.name) for s in rp.runtime(ctx, host).status_all()]
        forbidden = PAIR_PROGRAMS + (PEER_PROGRAMS if host == rp.peer else ())
        found[host] = leftovers(statuses, forbidden)
    return found


def verify_steps(rp: RollbackParams, runs_root: Path) -> list[Step]:
    t = rp.target

    def single(ctx: StepContext) -> Check:
        problems = single_node_problems(single_node_facts(rp, ctx))
        return Check(not problems, "; ".join(problems) or
                     "front page, /health/ (database, redis, storage), article, session OK; "
                     "PostgreSQL primary, no sync standby, no slot")

    def nothing_left(ctx: StepContext) -> Check:
        left = {h: p for h, p in running_pair_programs(rp, ctx).items() if p}
        return Check(not left, f"still running: {left}" if left else
                     f"no pair program runs on {', '.join(rp.all_hosts)}")

    def retire(_ctx: StepContext) -> None:
        retire_upgrade_journal(runs_root)

    def retired(_ctx: StepContext) -> Check:
        h = History.load(runs_root, "upgrade")
        ok = not h.runs
        return Check(ok, "the upgrade journal is retired" if ok
                     else f"{runs_root}/upgrade still holds {len(h.runs)} run(s)")

    return [
        Step(id=sid(t, "verify.single-node"), host=t, kind=StepKind.PROBE,
             reason="the single-node stack's own checks pass on the single server",
             verify=guarded("single-node checks", single), settle_timeout=20, poll_interval=2),
        Step(id=sid(t, "verify.nothing-of-the-pair"), host=t, kind=StepKind.PROBE,
             reason="no program of the pair runs on any host (supervisor's runtime status)",
             verify=guarded("no pair program running", nothing_left)),
        Step(id=sid(t, "journal.upgrade-retired"), host=t, kind=StepKind.COMMAND,
             reason="the pair is rolled back: the upgrade's journal is kept under another name "
                    "so `hapair upgrade` starts afresh later",
             action=Fn(f"rename {runs_root}/upgrade to {upgrade_archive_name('<run>')}",
                       retire),
             verify=guarded("the upgrade journal is retired", retired)),
    ]


def retire_upgrade_journal(runs_root: Path) -> Path | None:
    src = runs_root / "upgrade"
    if not src.is_dir():
        return None
    latest = (src / "latest").resolve().name if (src / "latest").is_symlink() else "unknown"
    dst = runs_root / upgrade_archive_name(latest)
    os.replace(src, dst)  # atomic on one file system: a reader sees one or the other
    return dst

