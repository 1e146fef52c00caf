"""`hapair inventory …`: validate an inventory and show what hapair understood from it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from hapair.cli.options import OutputFormat, inventory_option, output_option
from hapair.cli.output import emit
from hapair.inventory import REDACTED, Inventory, load_inventory


@click.group(help="Inspect and validate an inventory.")
def inventory() -> None:
    pass


@inventory.command("check")
@inventory_option
@output_option
def check(inventory: Path, output: OutputFormat) -> None:
    """Validate the inventory (exit 2 with one line naming the key if it is not valid)."""
    inv = load_inventory(inventory)  # InventoryError -> `hapair: FILE: KEY: problem`, exit 2
    emit(summarize(inv), output, _render)


def summarize(inv: Inventory) -> dict[str, Any]:
    """What the inventory says, as plain data. Secrets appear as '***' plus their reference."""
    return {
        "file": inv.source,
        "valid": True,
        "cluster": inv.cluster,
        "durability": inv.durability,
        "hosts": [h.model_dump(mode="json", exclude_none=True) for h in inv.hosts],
        "front_door": inv.front_door.model_dump(mode="json", exclude_none=True),
        "services": inv.services.model_dump(mode="json", exclude_none=True),
        "secrets": {
            path: {"value": REDACTED, "ref": s.ref.describe()} for path, s in inv.secrets().items()
        },
        "warnings": list(inv.warnings),
    }


def _render(summary: dict[str, Any], console: Console) -> None:
    for line in render_lines(summary):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def render_lines(s: dict[str, Any]) -> list[str]:
    """The human form of `summarize()` (pure, so it is tested on data)."""
    door = s["front_door"]
    on = f" on {door['interface']}" if door.get("interface") else ""
    lines = [
        f"{s['file']}: valid",
        f"cluster     {s['cluster']}",
        f"durability  {s['durability']}",
        f"front door  {door['kind']} {_hostport(door['address'], door['port'])}{on}",
        "hosts",
        *_columns(
            [
                h["name"],
                h["address"],
                ",".join(h["roles"]),
                h["runtime"],
                f"ssh {h['ssh']['user']}@{_hostport(h['address'], h['ssh']['port'])}",
            ]
            for h in s["hosts"]
        ),
        "services",
        *_columns(
            [name, f"port {svc['port']}", _service_detail(name, svc)]
            for name, svc in s["services"].items()
        ),
        "secrets",
        *_columns([path, sec["ref"]] for path, sec in s["secrets"].items()),
        "warnings" if s["warnings"] else "warnings    none",
        *[f"  {w}" for w in s["warnings"]],
    ]
    return lines


def _service_detail(name: str, svc: dict[str, Any]) -> str:
    match name:
        case "postgres":
            return f"PostgreSQL {svc['version']}, database {svc['database']}"
        case "storage":
            return f"{svc['backend']}, buckets {', '.join(svc['buckets'])}"
        case "backend" | "frontend":
            return f"health {svc['health']}"
        case "http_lb":
            routes = svc["routes"]
            n_back, n_front = len(routes["backend"]), len(routes["frontend"])
            return f"{svc['kind']}, {n_back} backend routes, {n_front} frontend routes"
    return ""


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _columns(rows: Any) -> list[str]:
    """Left-aligned columns, indented two spaces."""
    table: list[Sequence[str]] = [list(r) for r in rows]
    if not table:
        return []
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table
    ]
