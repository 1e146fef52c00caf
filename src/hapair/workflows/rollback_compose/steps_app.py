"""Compose rollback, the user's stack and hapair's project: the user's compose file back from
`<file>.hapair-before` (the upgrade's edit kept as `<file>.hapair-pair`), the app's changed
containers recreated from it, then hapair's project down on every host and the peer's copy of
the user's project removed (volumes are never removed: docs/rollback.md says which remain)."""

from __future__ import annotations

from hapair.compose.programs import Project
from hapair.plan.step import Check, Fn, Step, StepContext, StepKind, Verify
from hapair.workflows.rollback_compose.model import sid
from hapair.workflows.rollback_compose.setup import ComposeRollback, containers
from hapair.workflows.upgrade.stepkit import FileIsOneOf, all_checks, guarded


def file_step(cr: ComposeRollback) -> Step:
    """Written BEFORE the hand-backs, so the user's redis and postgres start once, from their
    own definitions (ports, restart policy, no `single-node` profile), not from the edit."""
    t, path = cr.target, cr.compose_file

    def restore(ctx: StepContext) -> None:
        # the edited file kept once (a resumed run must not copy the original over it)
        ctx.transport.run(["sh", "-c", '[ -f "$2" ] || [ ! -f "$1" ] || cp -p "$1" "$2"', "sh",
                          path, cr.pair_file])
        ctx.transport.write_file(path, cr.original, mode=0o644)

    return Step(id=sid(t, "file-restored"), host=t, kind=StepKind.FILE,
                reason=f"{path} is the user's own file again ({cr.before_file}); nothing is "
                       "recreated yet",
                action=Fn(f"keep {path} as {cr.pair_file}; write {cr.before_file}'s content to "
                          f"{path}", restore),
                verify=FileIsOneOf(path, [cr.original], "the pre-upgrade content"))


def running(cr: ComposeRollback, service: str) -> Verify:
    project = cr.compose(cr.target).project

    def check(ctx: StepContext) -> Check:
        found = containers(ctx, cr.target, project, service)
        return Check(bool(found), f"{cr.target}: {service} "
                     + ("runs" if found else "runs no container"))

    return guarded(f"{service} runs", check)


def app_step(cr: ComposeRollback) -> Step:
    t, services = cr.target, cr.recreate

    def recreate(ctx: StepContext) -> None:
        app = cr.runtime(ctx, t).project("app")
        for service in services:
            app.start(service)  # up -d --no-deps: recreated when its definition changed

    return Step(id=sid(t, "app-recreated"), host=t, kind=StepKind.RECREATE,
                reason="the app's containers the upgrade had re-pointed at hapair's router "
                       f"recreated from the original file: {', '.join(services) or 'none'}",
                client_impact="each recreated container is down while it restarts (seconds)",
                action=Fn(f"up -d --no-deps {' '.join(services) or '(nothing)'}", recreate),
                verify=all_checks("the app runs from the original file",
                                  FileIsOneOf(cr.compose_file, [cr.original],
                                              "the pre-upgrade content"),
                                  *(running(cr, s) for s in services)),
                settle_timeout=120)


def _no_container(host: str, project: str) -> Verify:
    def check(ctx: StepContext) -> Check:
        found = containers(ctx, host, project, running_only=False)
        return Check(not found, f"{host}: project {project} " + (
            f"still has {', '.join(found)}" if found else "has no container"))

    return guarded(f"no container of {project} on {host}", check)


def _down(cr: ComposeRollback, host: str, which: Project, what: str) -> Fn:
    def down(ctx: StepContext) -> None:
        cr.runtime(ctx, host).project(which).down()

    return Fn(what, down)


def down_steps(cr: ComposeRollback) -> list[Step]:
    steps = []
    for host in cr.all_hosts:
        project = cr.hapair_project(host)
        steps.append(Step(
            id=sid(host, "hapair-down"), host=host, kind=StepKind.COMMAND,
            reason=f"nothing of hapair's project runs on {host} any more (etcd, Patroni, "
                   "Redis, Sentinel, router, keepalived); its volumes and files are kept",
            action=_down(cr, host, "hapair",
                         f"docker compose -p {project} -f {cr.hapair_file(host)} down (no -v)"),
            verify=_no_container(host, project)))
    peer, project = cr.peer, cr.compose(cr.peer).project
    steps.append(Step(
        id=sid(peer, "app-down"), host=peer, kind=StepKind.COMMAND,
        reason=f"the copy of the user's project the upgrade made on {peer} goes (containers "
               "and networks; its files and volumes stay)",
        action=_down(cr, peer, "app", f"docker compose -p {project} down (no -v)"),
        verify=_no_container(peer, project)))
    return steps
