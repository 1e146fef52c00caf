"""Everything the compose upgrade needs before its first step: the stack discovered on node1
(read-only), the generated bundles and edits, the preflight risks. `plan` uses placeholder
secrets (nothing it shows holds one); the real run renders with the inventory's and hapair's
generated secrets."""

from __future__ import annotations

from dataclasses import dataclass

from hapair.exec.journal import History
from hapair.facts.snapshot import ClusterFacts
from hapair.plan.step import Plan
from hapair.workflows.compose_preview import ComposePreview, compose_preview
from hapair.workflows.context import WorkflowContext
from hapair.workflows.upgrade.params import UpgradeParams
from hapair.workflows.upgrade.preflight import Preflight
from hapair.workflows.upgrade_compose.plan import build_compose_plan
from hapair.workflows.upgrade_compose.preflight import compose_preflight
from hapair.workflows.upgrade_compose.setup import ComposeUpgrade, ha_secrets


@dataclass(frozen=True)
class PreparedCompose:
    preview: ComposePreview
    upgrade: ComposeUpgrade
    preflight: Preflight
    plan: Plan


def prepare_compose(ctx: WorkflowContext, p: UpgradeParams, *, real_secrets: bool
                    ) -> PreparedCompose:
    preview = compose_preview(ctx, p.inv, ha_secrets(p) if real_secrets else None)
    cu = ComposeUpgrade.from_preview(p, preview)
    resuming = bool(History.load(ctx.runs_root, "upgrade").applied())
    risks = compose_preflight(ctx, cu, resuming=resuming)
    return PreparedCompose(preview, cu, Preflight(ClusterFacts({}), risks, resuming),
                           build_compose_plan(cu))
