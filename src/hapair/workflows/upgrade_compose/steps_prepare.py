"""Compose upgrade, before any service changes: the backup, every host's generated files, the
user's project on node2, the Patroni image, node2's empty data volumes."""

from __future__ import annotations

import posixpath
import shlex

from hapair.compose.generate import HostBundle
from hapair.plan.step import (
    Check,
    CommandCheck,
    Fn,
    Run,
    Step,
    StepContext,
    StepKind,
    Undo,
    Verify,
)
from hapair.workflows.upgrade.stepkit import FileIsOneOf, all_checks, guarded
from hapair.workflows.upgrade_compose.setup import ComposeUpgrade

PLAN = "upgrade"
# What is never copied from node1's project directory: env files hold node1's own settings
# (node2 gets its own), and hapair's backups of edited files are node1's history.
COPY_EXCLUDES = ("./.env*", "./*.hapair-before")


def sid(host: str, name: str) -> str:
    return f"{PLAN}/{host}/compose.{name}"


# --- backup ------------------------------------------------------------------------------------


def backup_step(cu: ComposeUpgrade) -> Step:
    """`pg_dump -Fc` from the user's running PostgreSQL container to a 0600 file on node1,
    checked with `pg_restore -l` (in the same container, the file on stdin)."""
    host, path = cu.primary, cu.backup_path()
    pg = cu.p.inv.services.postgres
    service = cu.compose(host).services.postgres or "postgres"

    def dump(ctx: StepContext) -> None:
        app = cu.runtime(ctx, host).project("app")
        argv = app.argv("exec", "-T", "-u", "postgres", service, "pg_dump", "-Fc",
                        "-U", pg.owner, "-d", pg.database)
        script = ('set -e; umask 077; mkdir -p "$(dirname "$0")"; "$@" > "$0.tmp"; '
                  'mv -f "$0.tmp" "$0"')
        ctx.transport.run(["sh", "-c", script, path, *argv], timeout=3600)

    def readable(ctx: StepContext) -> Check:
        app = cu.runtime(ctx, host).project("app")
        argv = app.argv("exec", "-T", service, "pg_restore", "-l")
        res = ctx.transport.run(["sh", "-c", '"$@" < "$0"', path, *argv], check=False,
                                timeout=600)
        ok = res.ok and "TABLE DATA" in res.stdout
        return Check(ok, f"{host}: {path} " + ("lists its table data (pg_restore -l)" if ok
                                               else f"is not a readable dump: {res.stderr[:200]}"))

    return Step(id=sid(host, "backup"), host=host, kind=StepKind.COMMAND,
                reason=f"pg_dump -Fc of {pg.database} to {path} (0600) before anything changes; "
                       "the data volume itself stays untouched until the pair is verified",
                client_impact="one read of the database (I/O), no client impact",
                action=Fn(f"pg_dump -Fc {pg.database} in {service} > {path}", dump),
                verify=guarded(f"{path} is a readable dump", readable))


# --- generated files -----------------------------------------------------------------------


def bundle_step(cu: ComposeUpgrade, host: str) -> Step:
    bundle = cu.bundles[host]
    files = bundle.files

    def write(ctx: StepContext) -> None:
        dirs = sorted({posixpath.dirname(f.path) for f in files})
        ctx.transport.run(["mkdir", "-p", *dirs])
        for f in files:
            ctx.transport.write_file(f.path, f.content, mode=f.mode, owner=f.owner)

    return Step(id=sid(host, "files"), host=host, kind=StepKind.FILE,
                reason=f"hapair's own project {bundle.project}: {bundle.compose_path} and the "
                       "configs it mounts (secrets only in 0600 files)",
                action=Fn(f"write {len(files)} files under {bundle.directory()}", write),
                verify=all_checks(f"{len(files)} files in place",
                                  *(FileIsOneOf(f.path, [f.content]) for f in files)),
                undo=Undo(Run(["rm", "-f", *(f.path for f in files)])))


def _project_dir(cu: ComposeUpgrade) -> str:
    return posixpath.dirname(cu.compose(cu.primary).files[0])


def node2_project_step(cu: ComposeUpgrade) -> Step:
    """node1's project directory (build contexts, mounted configs) copied to node2, then the
    compose file as node2 must read it, and node2's env file (node1's, if node2 has none)."""
    src, dst = cu.primary, cu.standby
    directory = _project_dir(cu)
    edit = cu.edits[dst]
    env1, env2 = cu.compose(src).env_files, cu.compose(dst).env_files
    excludes = [f"--exclude={e}" for e in COPY_EXCLUDES]

    def copy(ctx: StepContext) -> None:
        packed = ctx.on(src).run(["sh", "-c", 'tar -C "$0" -cf - "$@" . | base64 -w0',
                                  directory, *excludes], timeout=600).stdout
        ctx.transport.run(["sh", "-c", 'mkdir -p "$0" && base64 -d | tar -C "$0" -xf -',
                           directory], input=packed, timeout=600)
        ctx.transport.write_file(edit.path, edit.after, mode=0o644)
        for ours, theirs in zip(env1, env2, strict=False):
            if not _exists(ctx, theirs):
                ctx.transport.write_file(theirs, ctx.on(src).read_file(ours), mode=0o600)

    checks: list[Verify] = [FileIsOneOf(edit.path, [edit.after], f"{dst}'s edited compose file"),
              *(CommandCheck(["test", "-f", e], description=f"{e} exists") for e in env2)]
    return Step(id=sid(dst, "project"), host=dst, kind=StepKind.FILE,
                reason=f"the user's project on {dst}: {directory} from {src} (without env "
                       f"files), {edit.path} as {dst} reads it, its own env file",
                action=Fn(f"copy {src}:{directory} → {dst} (tar over the controller); write "
                          f"{edit.path}; {', '.join(env2) or 'no env file'} (0600, from "
                          f"{src}'s if missing)", copy),
                verify=all_checks(f"{dst}'s project in place", *checks))


def _exists(ctx: StepContext, path: str) -> bool:
    return ctx.transport.run(["test", "-e", path], check=False).ok


# --- images and volumes ------------------------------------------------------------------


def _built_services(bundle: HostBundle) -> list[str]:
    services = bundle.compose.get("services") or {}
    return sorted(name for name, s in services.items() if isinstance(s, dict) and "build" in s)


def images_step(cu: ComposeUpgrade, host: str) -> Step:
    bundle = cu.bundles[host]
    services = _built_services(bundle)
    images = [str(bundle.compose["services"][s]["image"]) for s in services]

    def build(ctx: StepContext) -> None:
        project = cu.runtime(ctx, host).project("hapair")
        for service in services:
            project.build(service)

    return Step(id=sid(host, "images"), host=host, kind=StepKind.COMMAND,
                reason="Patroni built FROM the stack's own PostgreSQL image (same major as the "
                       "data)" + (", keepalived" if len(services) > 1 else ""),
                client_impact="CPU and network on the node while building, no client impact",
                action=Fn(f"docker compose -p {bundle.project} build {' '.join(services)}",
                          build),
                verify=all_checks(f"images {', '.join(images)} exist",
                                  *(CommandCheck(["docker", "image", "inspect", "--format",
                                                  "{{.Id}}", i], description=f"image {i}")
                                    for i in images)))


def volumes_step(cu: ComposeUpgrade) -> Step:
    """node2's data volumes, created EMPTY by hapair: the generated file declares them
    external, so compose can never create (or replace) one by itself."""
    host = cu.standby
    volumes = cu.external_volumes(host)
    return Step(id=sid(host, "volumes"), host=host, kind=StepKind.COMMAND,
                reason=f"empty volumes {', '.join(volumes)} for Patroni's clone and the Redis "
                       "replica (external in the generated file: never created implicitly)",
                action=_each([["docker", "volume", "create", v] for v in volumes]),
                verify=all_checks("the volumes exist",
                                  *(CommandCheck(["docker", "volume", "inspect", v],
                                                 description=f"volume {v}") for v in volumes)),
                undo=Undo(Run(["docker", "volume", "rm", *volumes])))


def app_network(cu: ComposeUpgrade, host: str) -> str | None:
    """The real name of the user's app network that hapair's router joins (external)."""
    networks = cu.bundles[host].compose.get("networks") or {}
    app = networks.get("app")
    return str(app.get("name")) if isinstance(app, dict) and app.get("external") else None


def node2_created_step(cu: ComposeUpgrade) -> Step:
    """The user's project created on node2 (`up --no-start`): its networks exist, with
    compose's own labels, before hapair's project declares one of them external."""
    host = cu.standby
    project = cu.compose(host).project
    network = app_network(cu, host)
    checks = ([CommandCheck(["docker", "network", "inspect", network],
                            description=f"network {network}")] if network else [])
    return Step(id=sid(host, "app-created"), host=host, kind=StepKind.COMMAND,
                reason=f"{project}'s networks and containers created on {host}, none started "
                       "(the router joins its network)",
                action=Fn(f"docker compose -p {project} up --no-start",
                          lambda ctx: cu.runtime(ctx, host).project("app").create_all()),
                verify=all_checks(f"{project} exists on {host}", *checks),
                undo=Undo(Fn(f"docker compose -p {project} down (volumes kept)",
                             lambda ctx: cu.runtime(ctx, host).project("app").down())))


def _each(argvs: list[list[str]]) -> Fn:
    def run(ctx: StepContext) -> None:
        for argv in argvs:
            ctx.transport.run(argv)

    return Fn("; ".join(shlex.join(a) for a in argvs), run)
