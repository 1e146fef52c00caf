"""`hapair migrate`: the app's database migrations, run once, on the primary's node.

The compose upgrade moves `migrate` out of the app's start command into a one-shot service
in the `migrate` profile (compose/edits.py, ORIGINAL_DEFECTS #24): a start on either node
must never migrate. This is the explicit step that runs it: `docker compose --profile
migrate run --rm -T --no-deps migrate` in the user's project on the node Patroni leads
(the app there reaches PostgreSQL through its local router, as every other container does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hapair.compose.edits import MIGRATE_PROFILE, MIGRATE_SERVICE
from hapair.compose.host_runtime import ComposeHostRuntime
from hapair.compose.runtime import ComposeRuntime
from hapair.compose.yamlio import load_plain
from hapair.errors import CommandFailed, Refused
from hapair.workflows.context import WorkflowContext
from hapair.workflows.ops.pair import cluster, leader
from hapair.workflows.upgrade.params import UpgradeParams

OUTPUT_TAIL = 4000  # characters of the job's output kept in the report
TIMEOUT_S = 3600.0


@dataclass
class Migration:
    node: str
    argv: list[str]  # file names and flags only: the env files hold the secrets
    returncode: int | None = None  # None: not run (--dry-run)
    output: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.node, "service": MIGRATE_SERVICE, "command": self.argv,
                "ran": self.returncode is not None, "returncode": self.returncode,
                "output": self.output}


def migration_job(ctx: WorkflowContext, p: UpgradeParams) -> tuple[str, ComposeRuntime]:
    """The primary's node and its project with the migrate profile, or why there is none."""
    node = leader(cluster(p))
    if node is None:
        raise Refused("no PostgreSQL primary (Patroni has no leader): migrations need one")
    runtime = ctx.runtime(node)
    if not isinstance(runtime, ComposeHostRuntime) or not runtime.has_app:
        raise Refused(f"{node} is not a compose host with the app's project: hapair runs the "
                      f"`{MIGRATE_SERVICE}` service of a compose stack only; run your "
                      f"migrations on {node}, the primary's node")
    app = runtime.project("app")
    if not any(MIGRATE_SERVICE in (_services(ctx, node, f)) for f in app.files):
        raise Refused(f"{node}: no `{MIGRATE_SERVICE}` service in {', '.join(app.files)} (hapair "
                      "adds one when the app ran migrations at every start; otherwise run "
                      "yours as you did before the upgrade)")
    return node, ComposeRuntime(app.transport, app.project, app.files, app.env_files,
                                profiles=(MIGRATE_PROFILE,), cli=app.cli())


def _services(ctx: WorkflowContext, node: str, path: str) -> dict[str, Any]:
    doc = load_plain(ctx.transports[node].read_file(path).decode())
    services = doc.get("services") if isinstance(doc, dict) else None
    return services if isinstance(services, dict) else {}


def migrate(ctx: WorkflowContext, p: UpgradeParams, *, dry_run: bool = False) -> Migration:
    node, job = migration_job(ctx, p)
    argv = job.argv("run", "--rm", "-T", "--no-deps", MIGRATE_SERVICE)
    out = Migration(node, argv)
    if dry_run:
        return out
    try:
        res = job.run_once(MIGRATE_SERVICE, timeout=TIMEOUT_S)
        out.returncode, text = 0, f"{res.stdout}{res.stderr}"
    except CommandFailed as exc:  # the job's own failure: reported with its output
        out.returncode, text = exc.returncode, exc.stderr
    out.output = ctx.redact(text)[-OUTPUT_TAIL:]
    return out
