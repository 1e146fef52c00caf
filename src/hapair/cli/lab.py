"""`hapair lab …`: build, inspect, break and tear down the network-namespace lab."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from hapair.cli.options import OutputFormat, output_option
from hapair.cli.output import emit, progress
from hapair.lab import manager
from hapair.lab.config import config_from_env
from hapair.lab.transport import LabHostTransport

from_option = click.option(
    "--from", "peer", metavar="HOST", help="Only the link between HOST and this host."
)


@click.group(help="The lab: real hosts in network namespaces on this machine (root needed).")
def lab() -> None:
    pass


@lab.command()
@click.option("--bare", is_flag=True, help="Hosts only: no single-server stack on node1.")
@click.option("--cpus-per-host", type=float, default=None, metavar="CPUS",
              help="Give every host this CPU quota once it is built (see `lab quota`).")
@output_option
def up(bare: bool, cpus_per_host: float | None, output: OutputFormat) -> None:
    """Build the lab (after removing any earlier one); print its status."""
    cfg = config_from_env()
    started = time.monotonic()
    manager.up(cfg, progress, stack=not bare, cpus_per_host=cpus_per_host)
    progress(f"lab up in {time.monotonic() - started:.0f}s")
    emit(manager.status(cfg), output, render_status)


@lab.command()
def down() -> None:
    """Remove everything: processes, namespaces, bridge, mounts, per-host data, state."""
    manager.down(config_from_env(), progress)
    progress("lab down: nothing left")


@lab.command()
@output_option
def status(output: OutputFormat) -> None:
    """Hosts, addresses, liveness, services, partitions, front door, inventory."""
    manager.require_root()
    emit(manager.status(config_from_env()), output, render_status)


@lab.command(
    "exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("host")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(host: str, command: tuple[str, ...]) -> int:
    """Run COMMAND inside HOST (stdin, stdout and exit code pass through): exec HOST -- CMD…"""
    manager.require_root()
    if command[:1] == ("--",):  # click keeps "--" once it stops parsing options
        command = command[1:]
    if not command:
        raise click.UsageError("missing COMMAND after HOST --")
    cfg = config_from_env()
    cfg.host(host)
    term = {"TERM": os.environ["TERM"]} if "TERM" in os.environ else {}
    argv = [*LabHostTransport(host, cfg.lab_dir).prefix(term), *command]
    return subprocess.run(argv, check=False).returncode


@lab.command()
@click.argument("host")
def crash(host: str) -> None:
    """Power loss: SIGKILL the host's PID 1 (all its processes die) and drop its link."""
    manager.crash(config_from_env(), host, progress)


@lab.command()
@click.argument("host")
def boot(host: str) -> None:
    """Power on: addresses restored, link up, sshd, supervisord and autostart programs."""
    manager.boot(config_from_env(), host, progress)


@lab.command()
@click.argument("host")
@click.option("--cpus", type=float, required=True,
              help="CPUs the host may use, e.g. 0.5 (0: no limit).")
@output_option
def quota(host: str, cpus: float, output: OutputFormat) -> None:
    """Limit every process of HOST to CPUS CPUs (a cgroup; kept by boot, removed by down)."""
    result = manager.set_quota(config_from_env(), host, cpus, progress)
    emit(result, output, lambda d, c: c.print(f"{d['host']}: {d['cpus']:g} CPU "
                                               f"({d['processes']} processes, {d['cgroup']})"))


@lab.command()
@click.argument("host")
@from_option
def partition(host: str, peer: str | None) -> None:
    """Cut HOST off the network (the controller too), or only from --from HOST2."""
    manager.partition(config_from_env(), host, peer, progress)


@lab.command()
@click.argument("host")
@from_option
def heal(host: str, peer: str | None) -> None:
    """Undo partitions: all of HOST's, or only the one with --from HOST2."""
    manager.heal(config_from_env(), host, peer, progress)


def render_status(data: dict[str, Any], console: Console) -> None:
    table = Table(title=f"lab {data['subnet']} (controller {data['controller']})")
    for col in ("host", "address", "alive", "services", "partitioned from"):
        table.add_column(col)
    for h in data["hosts"]:
        services = ", ".join(f"{s['name']}:{s['state']}" for s in h["services"]) or "-"
        table.add_row(
            h["name"],
            h["address"],
            "yes" if h["alive"] else "NO",
            services,
            ", ".join(h["partitioned_from"]) or "-",
        )
    console.print(table)
    sa = data["service_address"]
    console.print(f"front door: {data['front_door']} (static owner: {sa['static_owner']})")
    console.print(f"inventory:  {data['inventory']}")


def _main() -> None:
    # Lets the group run before it is registered in hapair.cli.main (python -m hapair.cli.lab).
    from hapair.cli.main import cli, main

    if "lab" not in cli.commands:
        cli.add_command(lab)
    main(["lab", *sys.argv[1:]])


if __name__ == "__main__":
    _main()
