"""`hapair inventory …` (placeholder; the inventory work replaces the body)."""

import click


@click.group(help="Inspect and validate an inventory.")
def inventory() -> None:
    pass
