"""`hapair status`, `hapair check`, `hapair monitor`: read-only views of the pair.

- status: every node's roles, lag (bytes and replay seconds), slots, leader lease, etcd,
  Redis/Sentinel, routers, HTTP, disk, VIP, backups; and warnings. Exit 0 (it reports).
- check: the named health checks. Exit 0 when all pass, 4 (Unhealthy) naming every failing
  check, after printing the full result (one JSON document with `-o json`).
- monitor: /metrics for Prometheus and JSON webhook alerts, every --interval seconds; or one
  poll with --once (metrics on stdout; exit 1 when a webhook could not be reached).

Tests hand the commands a snapshot source through the root context object:
`obj={"observe_source": callable(inventory) -> context manager yielding Source}`; by default
the hosts are reached over SSH as the inventory says.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import click
from prometheus_client import generate_latest

from hapair.cli.options import OutputFormat, inventory_option, output_option
from hapair.cli.output import emit, err_console, progress
from hapair.errors import StepFailed, Unhealthy
from hapair.inventory import Inventory, load_inventory
from hapair.monitor import (
    DEFAULT_LISTEN,
    AlertPolicy,
    MetricsServer,
    Monitor,
    SnapshotCollector,
    WebhookSender,
    parse_listen,
    registry_with,
)
from hapair.monitor.alerts import iso
from hapair.monitor.state import load_state, save_state
from hapair.observe import (
    Limits,
    PairSnapshot,
    ReadOnlySecrets,
    evaluate,
    failing,
    gather,
    run_checks,
    targets_from_params,
)
from hapair.observe.render import render_check, render_status
from hapair.observe.snapshot import redact_tree
from hapair.workflows.context import workflow_context
from hapair.workflows.upgrade.params import UpgradeParams


@dataclass(frozen=True)
class Source:
    poll: Callable[[], PairSnapshot]  # one read-only pass over the pair
    redact: Callable[[str], str]  # scrubs every known secret from text seen on hosts


SourceFactory = Callable[[Inventory], AbstractContextManager[Source]]


@contextmanager
def ssh_source(inv: Inventory) -> Iterator[Source]:
    """The real thing: SSH to every host, the controller's own HTTP and RESP probes. On
    compose hosts the host-side tools run in their containers (observe/shells.py)."""
    with workflow_context(inv) as ctx:
        params = UpgradeParams(inv, ReadOnlySecrets(ctx.generated.directory))
        targets = targets_from_params(params)
        yield Source(lambda: gather(targets, ctx.transports), ctx.redact)


@contextmanager
def _source(click_ctx: click.Context, inventory: Path) -> Iterator[Source]:
    inv = load_inventory(inventory)
    factory: SourceFactory = (click_ctx.obj or {}).get("observe_source", ssh_source)
    with factory(inv) as source:
        yield source


def status_document(s: PairSnapshot, limits: Limits | None = None) -> dict[str, Any]:
    return {**s.to_dict(), "warnings": [w.to_dict() for w in evaluate(s, limits)]}


def check_document(s: PairSnapshot, limits: Limits | None = None) -> dict[str, Any]:
    checks = run_checks(s, limits)
    return {
        "ok": not failing(checks),
        "cluster": s.cluster,
        "taken_at": s.taken_at,
        "failing": [c.name for c in failing(checks)],
        "checks": [c.to_dict() for c in checks],
        "warnings": [w.to_dict() for w in evaluate(s, limits)],
    }


@click.command("status")
@inventory_option
@output_option
@click.pass_context
def status_cmd(click_ctx: click.Context, inventory: Path, output: OutputFormat) -> None:
    """Show the pair as it is now: roles, lag, slots, leader lease, etcd, Redis and
    Sentinel, routers, HTTP, disk, VIP, backups — and warnings. Read-only."""
    with _source(click_ctx, inventory) as source:
        progress("observing the pair (read-only)")
        doc = redact_tree(status_document(source.poll()), source.redact)
    emit(doc, output, render_status)


@click.command("check")
@inventory_option
@output_option
@click.pass_context
def check_cmd(click_ctx: click.Context, inventory: Path, output: OutputFormat) -> None:
    """Run the health checks. Exit 0 when all pass, 4 naming every failing check."""
    with _source(click_ctx, inventory) as source:
        progress("checking the pair (read-only)")
        doc = redact_tree(check_document(source.poll()), source.redact)
    emit(doc, output, render_check)
    if doc["failing"]:
        raise Unhealthy(f"{len(doc['failing'])} of {len(doc['checks'])} checks failing: "
                        + ", ".join(doc["failing"]))


def _log(line: str) -> None:
    err_console.print(f"{iso(time.time())} {line}", markup=False, highlight=False,
                      soft_wrap=True)


@click.command("monitor")
@inventory_option
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, metavar="ADDR:PORT",
              help="Serve Prometheus /metrics here.")
@click.option("--interval", type=click.FloatRange(min=1), default=10.0, show_default=True,
              help="Seconds between polls.")
@click.option("--webhook", "webhooks", multiple=True, metavar="URL", envvar="HAPAIR_WEBHOOK",
              help="POST JSON alerts here (repeatable). Env: HAPAIR_WEBHOOK (URLs separated "
                   "by spaces; keeps tokens out of the process list).")
@click.option("--repeat-minutes", type=click.FloatRange(min=0), default=None,
              help="Notify again while an alert keeps firing (0: never). Default: the "
                   "inventory's monitor.renotify_s (60 minutes).")
@click.option("--backup-max-age-hours", type=click.FloatRange(min=0), default=26.0,
              show_default=True, help="Alert when the newest backup is older (0: no alert).")
@click.option("--state", "state_file", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Keep alert and failover state in this file between runs "
                                 "(for --once from cron).")
@click.option("--once", is_flag=True,
              help="Poll once, send alerts, print the metrics on stdout and exit.")
@click.pass_context
def monitor_cmd(click_ctx: click.Context, inventory: Path, listen: str, interval: float,
                webhooks: tuple[str, ...], repeat_minutes: float | None,
                backup_max_age_hours: float,
                state_file: Path | None, once: bool) -> None:
    """Export the pair's health to Prometheus and alert webhooks, until stopped."""
    address, port = parse_listen(listen)
    sender = WebhookSender(webhooks)
    limits = Limits(backup_max_age_s=backup_max_age_hours * 3600)
    policy = _policy(inventory, None if repeat_minutes is None else repeat_minutes * 60,
                     damped=not once or state_file is not None)
    with _source(click_ctx, inventory) as source:
        collector = SnapshotCollector()
        monitor = Monitor(source.poll, sender, limits=limits, repeat_s=policy.renotify_s,
                          redact=source.redact, log=_log, collector=collector, policy=policy)
        if state_file is not None:
            monitor.restore(load_state(state_file))
        try:
            if once:
                _once(monitor, collector)
            else:
                _serve(monitor, collector, address, port, interval)
        finally:
            if state_file is not None:
                save_state(state_file, monitor.state())


def _policy(inventory: Path, renotify_s: float | None, damped: bool) -> AlertPolicy:
    """The inventory's `monitor:` section. `--once` without `--state` remembers nothing from
    one run to the next, so it cannot wait for a condition to hold: no damping then."""
    settings = load_inventory(inventory).monitor
    policy = AlertPolicy.from_settings(settings, renotify_s)
    if not damped:
        return AlertPolicy.immediate(policy.renotify_s)
    _log(policy.describe())
    return policy


def _once(monitor: Monitor, collector: SnapshotCollector) -> None:
    result = monitor.poll_once()
    sys.stdout.write(generate_latest(registry_with(collector)).decode())
    sys.stdout.flush()
    if not result.delivery.ok:
        raise StepFailed(f"{len(result.delivery.failed)} webhook delivery(ies) failed (kept for "
                         "the next run with --state): " + "; ".join(result.delivery.failed))


def _serve(monitor: Monitor, collector: SnapshotCollector, address: str, port: int,
           interval: float) -> None:
    server = MetricsServer(registry_with(collector), address, port)
    stop = threading.Event()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop.set()  # systemd's stop: finish cleanly, exit 0

    previous = signal.signal(signal.SIGTERM, on_term)
    _log(f"serving /metrics on http://{address}:{server.port}/metrics, polling every "
         f"{interval:g} s, {len(monitor.sender.urls)} webhook(s)")
    try:
        monitor.run(interval, stop)
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
        _log("monitor stopped")
