"""examples/inventory.yaml (the schema contract) loads with the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from hapair.inventory import load_inventory

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "inventory.yaml"

# The example abbreviates two pinned host keys as "ssh-ed25519 AAAA...", which is not base64
# and so not a valid pin. Until the example spells them out, the copy gets a well-formed key.
ABBREVIATED_KEY = '"ssh-ed25519 AAAA..."'
WELL_FORMED_KEY = (
    '"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"'
)


def referenced_files(data: Any) -> set[str]:
    """Secret files ({file: x}) and SSH keys (ssh.key) the example refers to."""
    found: set[str] = set()
    if isinstance(data, dict):
        if set(data) == {"file"}:
            found.add(data["file"])
        if isinstance(data.get("key"), str) and "host_key" in data:
            found.add(data["key"])
        for value in data.values():
            found |= referenced_files(value)
    elif isinstance(data, list):
        for value in data:
            found |= referenced_files(value)
    return found


def test_example_inventory_is_valid(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace(ABBREVIATED_KEY, WELL_FORMED_KEY)
    files = referenced_files(YAML(typ="safe", pure=True).load(text))
    assert "secrets/postgres_password" in files and "lab-ssh/id_ed25519" in files
    for rel in files:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"value of {rel}\n")
        path.chmod(0o600)
    (tmp_path / "inventory.yaml").write_text(text)

    inv = load_inventory(tmp_path / "inventory.yaml", env={})

    assert [h.name for h in inv.nodes] == ["node1", "node2"]
    assert inv.witness is not None and inv.witness.name == "witness"
    assert inv.warnings == ()
    assert (inv.cluster, inv.durability, inv.front_door.kind) == ("cms", "sync", "vip")
    assert inv.services.postgres.password.reveal() == "value of secrets/postgres_password"
    assert len(inv.secrets()) == 5
    routes = inv.services.http_lb.routes
    assert "/api/health" in routes.frontend and "/api/articles/" in routes.backend
