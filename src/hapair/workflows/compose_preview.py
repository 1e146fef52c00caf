"""`hapair plan` on compose hosts: what the upgrade would generate and edit, read-only.

The stack is discovered on node1 over SSH (compose's own `config`, the running containers,
the PostgreSQL major of the data directory); from it, the files hapair would install on every
host (compose/generate.py, checked against the invariants) and the user's compose file as it
would read on each node (compose/edits.py) — as a diff, with the containers each change
recreates. Nothing is written anywhere; config contents are never shown (they hold secrets),
so the generator gets placeholder secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hapair.components.common import Credential, Plain
from hapair.compose.collect import discover_remote
from hapair.compose.edits import EditResult, NodeEdit, edit_compose_file
from hapair.compose.generate import GenerateParams, HostBundle, check_bundle, generate
from hapair.compose.generate_configs import HaSecrets, HostSpec, Vip
from hapair.compose.model import Stack
from hapair.inventory import Host, Inventory
from hapair.workflows.context import WorkflowContext

VIP_PREFIX = 32  # as the native layout's keepalived holds it
_PLACEHOLDER = Plain("placeholder-not-installed")


@dataclass(frozen=True)
class ComposePreview:
    stack: Stack
    bundles: tuple[HostBundle, ...]
    edits: tuple[EditResult, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "discovered_on": self.stack.host,
            "findings": [f"[{f.severity}] {f.message}" for f in self.stack.findings],
            "generated": [_bundle_doc(b) for b in self.bundles],
            "edits": [{"node": e.node, "path": e.path, "changed": e.changed, "diff": e.diff(),
                       "notes": [str(n) for n in e.notes], "containers": e.impact_lines()}
                      for e in self.edits],
        }


def _bundle_doc(b: HostBundle) -> dict[str, Any]:
    return {"host": b.host.name, "project": b.project, "compose_file": b.compose_path,
            "services": sorted(b.compose.get("services", {})),
            "files": [f.path for f in b.files],
            "data_volume": b.pg_volume, "data_volume_reused": b.pg_volume_exists,
            "violations": [str(v) for v in check_bundle(b)]}


def compose_preview(ctx: WorkflowContext, inv: Inventory,
                    secrets: HaSecrets | None = None) -> ComposePreview:
    """The stack discovered on node1, the generated bundles and the edited compose files.
    Without `secrets` (the read-only preview) the bundles hold placeholders."""
    node1, node2 = inv.nodes
    witness = inv.witness
    if node1.compose is None or witness is None:
        raise ValueError("compose preview: node1 on compose and a witness are needed")
    c = node1.compose
    t = ctx.transports[node1.name]
    stack = discover_remote(t, project=c.project, files=c.files, env_files=c.env_files)
    door = inv.front_door
    bundles = generate(GenerateParams(
        cluster=inv.cluster, stack=stack, nodes=(_spec(node1), _spec(node2)),
        witness=_spec(witness), secrets=secrets or _placeholder_secrets(),
        durability=inv.durability,
        vip=Vip(door.address, VIP_PREFIX, door.interface or "eth0", door.port,
                inv.services.backend.health) if door.kind == "vip" else None))
    text = t.read_file(c.files[0]).decode()
    edits = tuple(edit_compose_file(text, c.files[0], stack, NodeEdit(
        node=h.name, address=h.address, runs_scheduler=h is node1,
        env_rename=None if h is node1 else (node1.name, h.name))) for h in (node1, node2))
    return ComposePreview(stack, bundles, edits)


def _spec(h: Host) -> HostSpec:
    return HostSpec(h.name, h.address)


def _placeholder_secrets() -> HaSecrets:
    return HaSecrets(superuser=Credential("postgres", _PLACEHOLDER),
                     replication=Credential("replicator", _PLACEHOLDER),
                     redis_password=_PLACEHOLDER, sentinel_password=_PLACEHOLDER,
                     vrrp_secret=_PLACEHOLDER)
