"""The `hapair` command. The only place that turns errors into exit codes."""

from __future__ import annotations

import sys

import click

from hapair import __version__
from hapair.cli.options import output_option
from hapair.cli.output import emit, err_console
from hapair.errors import ExitCode, HapairError


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Take a one-server web stack to a two-node HA pair with a witness, and operate it.",
)
def cli() -> None:
    pass


@cli.command()
@output_option
def version(output) -> None:
    """Print hapair's version."""
    emit({"hapair": __version__}, output, lambda d, c: c.print(f"hapair {d['hapair']}"))


def _register_subcommands() -> None:
    # Each verb group lives in its own module; imported here to keep this file small.
    from hapair.cli import backup as backup_cli
    from hapair.cli import drill as drill_cli
    from hapair.cli import init as init_cli
    from hapair.cli import inventory as inventory_cli
    from hapair.cli import lab as lab_cli
    from hapair.cli import observe as observe_cli
    from hapair.cli import ops as ops_cli
    from hapair.cli import rollback as rollback_cli
    from hapair.cli import upgrade as upgrade_cli

    cli.add_command(inventory_cli.inventory)
    cli.add_command(drill_cli.drill)
    cli.add_command(lab_cli.lab)
    cli.add_command(upgrade_cli.plan_cmd)
    cli.add_command(upgrade_cli.upgrade_cmd)
    cli.add_command(backup_cli.backup)
    cli.add_command(backup_cli.restore)
    cli.add_command(ops_cli.switchover_cmd)
    cli.add_command(ops_cli.failover_cmd)
    cli.add_command(ops_cli.rejoin_cmd)
    cli.add_command(ops_cli.migrate_cmd)
    cli.add_command(rollback_cli.rollback_cmd)
    cli.add_command(init_cli.init)
    cli.add_command(observe_cli.status_cmd)
    cli.add_command(observe_cli.check_cmd)
    cli.add_command(observe_cli.monitor_cmd)


_register_subcommands()


def main(argv: list[str] | None = None) -> None:
    try:
        rc = cli.main(args=argv, prog_name="hapair", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("hapair: interrupted")
        sys.exit(ExitCode.INTERRUPTED)
    except click.ClickException as exc:  # bad usage: click's own message, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    except HapairError as exc:
        err_console.print(f"hapair: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    sys.exit(rc if isinstance(rc, int) else ExitCode.OK)


if __name__ == "__main__":
    main()
