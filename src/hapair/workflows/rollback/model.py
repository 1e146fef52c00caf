"""Pure decisions of the rollback: which node becomes the single server, which files come
back from the upgrade's backup (and how they are adapted to that node), what must not run.

No I/O here: every function takes facts and returns a value or a one-line reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hapair.components.patroni.probe import Member

# Programs only the pair runs. None of them may run anywhere after a rollback.
PAIR_PROGRAMS = ("etcd", "patroni", "sentinel", "router", "pgbouncer", "keepalived",
                 "hapair-s3-replicate", "hapair-s3-router", "hapair-s3-writer")
# The peer node serves nothing after a rollback: its app, load balancer, cache and site stop.
PEER_PROGRAMS = ("nginx", "backend", "frontend", "redis", "s3", "postgres")
# What the single server runs (the "before" stack).
SINGLE_PROGRAMS = ("postgres", "redis", "s3", "backend", "frontend", "nginx")
RUNNING_STATES = ("RUNNING", "STARTING", "BACKOFF", "STOPPING")


@dataclass(frozen=True)
class Target:
    """The node that becomes the single server, or why there is none."""

    node: str | None
    reason: str


def choose_target(members: Sequence[Member], wanted: str | None = None) -> Target:
    """The node that holds the data now = Patroni's one running leader. Anything else
    (no leader, two leaders, a leader that is not running) is refused."""
    leaders = [m for m in members if m.is_leader]
    if not leaders:
        return Target(None, "no PostgreSQL leader in Patroni's view: which node holds the "
                            "data is unknown")
    if len(leaders) > 1:
        names = ", ".join(m.name for m in leaders)
        return Target(None, f"more than one PostgreSQL leader ({names}): resolve the split "
                            "brain first")
    lead = leaders[0]
    if lead.state != "running":
        return Target(None, f"the leader {lead.name} is {lead.state}, not running")
    if wanted is not None and wanted != lead.name:
        return Target(None, f"--to {wanted}: the data is on {lead.name} (Patroni leader); "
                            f"switch over to {wanted} first or roll back to {lead.name}")
    return Target(lead.name, f"{lead.name} is the PostgreSQL leader (holds the data)")


@dataclass(frozen=True)
class RestoreFile:
    """A file of the upgrade's config archive put back on the single server."""

    member: str  # path inside the archive (relative to /)
    dest: str
    mode: int
    owner: str


def restore_files(data_dir: str, redis_conf: str, nginx_conf: str, include_dir: str,
                  *, with_redis: bool) -> tuple[RestoreFile, ...]:
    """The single-node configs the rollback restores. Redis only on the node the backup was
    taken on (the other node never had a pre-upgrade Redis; its own config is rewritten)."""
    pg = data_dir.rstrip("/")
    files = [
        RestoreFile(f"{pg}/postgresql.conf", f"{pg}/postgresql.conf", 0o600, "postgres:postgres"),
        RestoreFile(f"{pg}/pg_hba.conf", f"{pg}/pg_hba.conf", 0o600, "postgres:postgres"),
        RestoreFile(f"{pg}/postgresql.auto.conf", f"{pg}/postgresql.auto.conf", 0o600,
                    "postgres:postgres"),
        RestoreFile(f"{include_dir.rstrip('/')}/postgres.conf",
                    f"{include_dir.rstrip('/')}/postgres.conf", 0o600, "root"),
        RestoreFile(nginx_conf, nginx_conf, 0o644, "root"),
    ]
    if with_redis:
        files.append(RestoreFile(redis_conf, redis_conf, 0o640, "redis:redis"))
    return tuple(files)


def archive_member(path: str) -> str:
    return path.lstrip("/")


def missing_members(listing: str, needed: Iterable[str]) -> list[str]:
    """`tar -t` output → the needed paths (absolute or not) the archive does not hold."""
    have = {line.strip().rstrip("/") for line in listing.splitlines()}
    return [p for p in needed if archive_member(p) not in have]


def adapt(text: str, old_address: str, new_address: str) -> str:
    """A config of the first node made the target's: its own address in place of the
    first node's (whole addresses only: 10.99.0.1 never matches inside 10.99.0.11)."""
    if old_address == new_address:
        return text
    return re.sub(rf"(?<![\d.]){re.escape(old_address)}(?![\d])", new_address, text)


def has_static_address(text: str, address: str) -> bool:
    return any(line.split("/")[0].strip() == address for line in text.splitlines()
               if line.strip() and not line.lstrip().startswith("#"))


def with_static_address(text: str, address: str, prefix: int = 32) -> str:
    """The boot-time address file with `address` in it (once)."""
    if has_static_address(text, address):
        return text if text.endswith("\n") else text + "\n"
    lines = text.splitlines()
    if not lines:
        lines = ["# addresses configured at boot"]
    return "\n".join([*lines, f"{address}/{prefix}"]) + "\n"


def without_static_address(text: str, address: str) -> str:
    kept = [line for line in text.splitlines()
            if line.lstrip().startswith("#") or line.split("/")[0].strip() != address]
    return "\n".join(kept) + ("\n" if kept else "")


def keepalive_off(nginx_conf: str, directive: str) -> str:
    """The nginx config with `directive` first in its http block (it then wins over the
    default; a later keepalive_timeout in the same block would be a duplicate nginx -t
    rejects, and hapair's balanced config has none)."""
    out, done = [], False
    for line in nginx_conf.splitlines():
        out.append(line)
        if not done and re.fullmatch(r"\s*http\s*\{\s*", line):
            out.append(f"    {directive}")
            done = True
    if not done:
        raise ValueError("no `http {` line in the nginx config")
    return "\n".join(out) + "\n"


def redis_replicaof_lines(conf: str) -> list[str]:
    """`replicaof`/`slaveof` lines: a single server's Redis must not follow anyone."""
    return [line for line in conf.splitlines()
            if line.strip().lower().startswith(("replicaof ", "slaveof "))]


def patroni_slot_name(member: str) -> str:
    """Patroni names a member's physical slot after it, non-alphanumerics as `_`."""
    return re.sub(r"[^a-z0-9_]", "_", member.lower())


def leftovers(statuses: Iterable[tuple[str, str]], forbidden: Sequence[str]) -> list[str]:
    """(program, supervisor state) pairs → the forbidden programs still running."""
    return sorted(name for name, state in statuses
                  if name in forbidden and state.upper() in RUNNING_STATES)


def health_failures(status: int, body: object) -> list[str]:
    """The CMS /health/ answer (200 + every check ok) → what is wrong, empty when green."""
    problems = [] if status == 200 else [f"HTTP {status}"]
    checks = body.get("checks") if isinstance(body, dict) else None
    if not isinstance(checks, dict):
        return [*problems, "no checks in the answer"]
    for name in ("database", "redis", "storage"):
        check = checks.get(name)
        ok = isinstance(check, dict) and check.get("ok", check.get("status") == "ok")
        if not ok:
            problems.append(f"{name}: {check}")
    return problems


def upgrade_archive_name(run_id: str) -> str:
    """Where the upgrade's journal goes once the pair is rolled back (kept, not deleted)."""
    return f"upgrade.rolled-back-{run_id}"
