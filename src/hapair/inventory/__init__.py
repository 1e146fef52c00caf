"""The declarative model of one deployment: hosts, roles, services, durability, secrets.

inv = load_inventory("inventory.yaml")   # raises hapair.errors.InventoryError
inv.nodes, inv.witness, inv.warnings, inv.secrets()
redact(text, inv.secrets())              # scrub secret values from any text
"""

from hapair.inventory.fields import LoadContext
from hapair.inventory.load import load_inventory, parse_inventory
from hapair.inventory.model import (
    NO_WITNESS_WARNING,
    Backend,
    Compose,
    Durability,
    FrontDoor,
    Frontend,
    Host,
    HttpLb,
    Inventory,
    Postgres,
    Redis,
    Role,
    Routes,
    Runtime,
    Services,
    Ssh,
    Storage,
    Supervisor,
)
from hapair.inventory.secrets import REDACTED, Secret, SecretError, SecretRef, redact

__all__ = [
    "NO_WITNESS_WARNING",
    "REDACTED",
    "Backend",
    "Compose",
    "Durability",
    "FrontDoor",
    "Frontend",
    "Host",
    "HttpLb",
    "Inventory",
    "LoadContext",
    "Postgres",
    "Redis",
    "Role",
    "Routes",
    "Runtime",
    "Secret",
    "SecretError",
    "SecretRef",
    "Services",
    "Ssh",
    "Storage",
    "Supervisor",
    "load_inventory",
    "parse_inventory",
    "redact",
]
