"""Options spelled the same in every verb (STYLE.md: -i/--inventory, --output, --dry-run, …).

Use them as decorators: `@inventory_option @output_option def cmd(inventory, output): …`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import click


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


def _to_format(_ctx: click.Context, _param: click.Parameter, value: str) -> OutputFormat:
    return OutputFormat(value)


inventory_option = click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    envvar="HAPAIR_INVENTORY",
    help="Inventory file (YAML). Env: HAPAIR_INVENTORY.",
)
output_option = click.option(
    "-o",
    "--output",
    type=click.Choice([f.value for f in OutputFormat]),
    default=OutputFormat.table.value,
    show_default=True,
    callback=_to_format,
    help="table (human) or json (exactly one document on stdout).",
)
dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Show what would change; change nothing."
)
yes_option = click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
verbose_option = click.option("-v", "--verbose", count=True, help="More logs (repeatable).")
lock_wait_option = click.option(
    "--lock-wait",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds to wait for the deploy lock before refusing.",
)
