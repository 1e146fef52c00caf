"""What the compose workflows (upgrade, rollback) need of their hosts: the inventory's settings
and one ComposeHostRuntime per host and transport (the compose CLI is detected once)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hapair.compose.host_runtime import ComposeHostRuntime
from hapair.inventory import Compose, Host
from hapair.plan.step import StepContext
from hapair.workflows.upgrade.params import UpgradeParams


@dataclass
class ComposeHosts:
    p: UpgradeParams
    _runtimes: dict[tuple[str, int], ComposeHostRuntime] = field(
        default_factory=dict, init=False, repr=False)

    def host(self, name: str) -> Host:
        return self.p.host(name)

    def compose(self, name: str) -> Compose:
        settings = self.host(name).compose
        assert settings is not None  # the workflows' preflights refuse hosts without compose
        return settings

    def runtime(self, ctx: StepContext, name: str) -> ComposeHostRuntime:
        transport = ctx.on(name)
        key = (name, id(transport))
        if key not in self._runtimes:
            self._runtimes[key] = ComposeHostRuntime(transport, self.host(name))
        return self._runtimes[key]
