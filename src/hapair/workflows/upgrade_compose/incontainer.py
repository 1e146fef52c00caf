"""Run a native step's action and checks inside a program's container.

The native upgrade's SQL steps (`psql` as postgres over the local socket, scripts that edit
files next to the data) are right as they are; on a compose host they only have to run where
PostgreSQL runs. `in_container` swaps the step's transport for the container's
(`compose exec -T`), so the same step objects, with the same checks, serve both layouts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from hapair.exec.transport import Transport
from hapair.exec.with_env import WithEnv as WithEnv  # re-exported: steps import it here
from hapair.plan.step import Action, Check, Step, StepContext, Undo, Verify

ShellFor = Callable[[StepContext], Transport]


def _inside(ctx: StepContext, shell_for: ShellFor) -> StepContext:
    return StepContext(ctx.host, {**ctx.transports, ctx.host: shell_for(ctx)})


@dataclass(frozen=True)
class InContainerAction:
    inner: Action
    shell_for: ShellFor = field(repr=False)
    where: str

    def describe(self) -> str:
        return f"in {self.where}: {self.inner.describe()}"

    def run(self, ctx: StepContext) -> None:
        self.inner.run(_inside(ctx, self.shell_for))


@dataclass(frozen=True)
class InContainerVerify:
    inner: Verify
    shell_for: ShellFor = field(repr=False)
    where: str

    def describe(self) -> str:
        return f"in {self.where}: {self.inner.describe()}"

    def check(self, ctx: StepContext) -> Check:
        return self.inner.check(_inside(ctx, self.shell_for))


def in_container(step: Step, shell_for: ShellFor, where: str) -> Step:
    """`step` with its action, verify and undo run in the container `shell_for` gives."""
    def act(a: Action) -> Action:
        return InContainerAction(a, shell_for, where)

    def ver(v: Verify) -> Verify:
        return InContainerVerify(v, shell_for, where)

    undo = step.undo
    if undo is not None:
        undo = Undo(act(undo.action), needs=tuple(ver(n) for n in undo.needs),
                    verify=ver(undo.verify) if undo.verify else None,
                    settle_timeout=undo.settle_timeout)
    return replace(step, action=act(step.action) if step.action else None,
                   verify=ver(step.verify), undo=undo)
