"""What the compose rollback works from: who is who (the target holds the data and becomes the
single server; the peer and the witness stop serving), the user's compose file as it was and
as the upgrade left it, one ComposeHostRuntime per host, and small probes that ask the
containers themselves (docker's own labels, redis-cli and psql inside them)."""

from __future__ import annotations

from dataclasses import dataclass

from hapair.compose.draft import hapair_compose_file
from hapair.compose.generate_configs import REDIS_PORT
from hapair.compose.programs import hapair_project_of
from hapair.exec.transport import Transport
from hapair.plan.step import Check, StepContext
from hapair.workflows.compose_hosts import ComposeHosts
from hapair.workflows.rollback_compose.model import (
    BEFORE_SUFFIX,
    PAIR_SUFFIX,
    changed_services,
    info_field,
)
from hapair.workflows.upgrade.stepkit import psql_argv
from hapair.workflows.upgrade_compose.incontainer import WithEnv


@dataclass
class ComposeRollback(ComposeHosts):
    target: str
    original: str  # the user's compose file before the upgrade (`<file>.hapair-before`)
    edited: str  # the file as the upgrade left it (its `.hapair-pair` copy once restored)

    # --- hosts -------------------------------------------------------------------------------

    @property
    def peer(self) -> str:
        return self.p.peer_of(self.target).name

    @property
    def witness(self) -> str:
        assert self.p.names.witness is not None  # the preflight refuses without one
        return self.p.names.witness

    @property
    def all_hosts(self) -> tuple[str, ...]:
        return (self.target, self.peer, self.witness)

    def hapair_project(self, name: str) -> str:
        return hapair_project_of(self.compose(name).project)

    def hapair_file(self, name: str) -> str:
        return hapair_compose_file(self.compose(self.target).project, name)

    # --- the user's stack on the target --------------------------------------------------------

    @property
    def compose_file(self) -> str:
        return self.compose(self.target).files[0]

    @property
    def before_file(self) -> str:
        return self.compose_file + BEFORE_SUFFIX

    @property
    def pair_file(self) -> str:
        return self.compose_file + PAIR_SUFFIX

    @property
    def pg_service(self) -> str:
        return self.compose(self.target).services.postgres or "postgres"

    @property
    def redis_service(self) -> str:
        return self.compose(self.target).services.redis or "redis"

    @property
    def recreate(self) -> list[str]:
        return changed_services(self.original, self.edited,
                                (self.pg_service, self.redis_service))

    @property
    def has_vip(self) -> bool:
        return self.p.inv.front_door.kind == "vip"

    @property
    def database(self) -> str:
        return self.p.inv.services.postgres.database

    @property
    def data_dir(self) -> str:
        return self.p.inv.services.postgres.data_dir

    # --- shells in the containers --------------------------------------------------------------

    def pg_shell(self, ctx: StepContext, where: str) -> Transport:
        """psql beside PostgreSQL: `where` = "patroni" (hapair's) or "postgres" (the user's),
        as the image's superuser (POSTGRES_USER: the official image has no `postgres` role)."""
        shell = self.runtime(ctx, self.target).shell(where)
        return WithEnv(shell, {"PGUSER": self.p.inv.services.postgres.owner})

    def sql(self, ctx: StepContext, where: str, query: str) -> tuple[bool, str]:
        res = self.pg_shell(ctx, where).run(psql_argv(self.database), input=query,
                                            user="postgres", check=False, timeout=30)
        return res.ok, (res.stdout.strip() if res.ok else res.stderr.strip()[:200])

    def redis_cli(self, ctx: StepContext, which: str, *commands: str) -> str:
        """redis-cli in hapair-redis ("hapair") or the user's redis ("app"); the password
        reaches it on stdin, never in argv."""
        rt = self.runtime(ctx, self.target)
        text = "\n".join([f"AUTH {self.p.inv.services.redis.password.reveal()}", *commands, ""])
        if which == "hapair":
            res = rt.shell("redis").run(["redis-cli", "-p", str(REDIS_PORT)], input=text,
                                        check=False, timeout=30)
        else:
            res = rt.project("app").exec(self.redis_service, ["redis-cli"], input=text,
                                         check=False, timeout=30)
        return res.stdout if res.ok else ""

    def redis_role(self, ctx: StepContext, which: str) -> str | None:
        return info_field(self.redis_cli(ctx, which, "INFO replication"), "role")


def containers(ctx: StepContext, host: str, project: str, service: str | None = None, *,
               running_only: bool = True) -> list[str]:
    """The containers of a compose project (one service) on `host`, by compose's own labels:
    the same for compose v1 and v2, and true whatever file defines the project now."""
    argv = ["docker", "ps", "--format", "{{.Names}}", "--filter",
            f"label=com.docker.compose.project={project}"]
    if service:
        argv += ["--filter", f"label=com.docker.compose.service={service}"]
    if not running_only:
        argv.insert(2, "-a")
    return ctx.on(host).run(argv, timeout=30).stdout.split()


def none_running(ctx: StepContext, host: str, project: str, service: str | None = None,
                 *, what: str) -> Check:
    found = containers(ctx, host, project, service)
    return Check(not found, f"{host}: {what} " + (f"still runs ({', '.join(found)})" if found
                                                  else "runs no container"))
