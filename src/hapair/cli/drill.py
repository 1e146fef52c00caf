"""`hapair drill …`: run load against the front door, check acknowledged writes, report."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from types import FrameType

import click
from rich.markup import escape

from hapair.cli.options import OutputFormat, output_option, verbose_option
from hapair.cli.output import emit, err_console, progress
from hapair.drill.checker import CheckResult, check_writes
from hapair.drill.load import MAX_REQUESTS_CAP, LoadConfig, LoadGenerator, Progress
from hapair.drill.recorder import RecordWriter
from hapair.drill.report import build_report, render_table
from hapair.errors import Unhealthy

PROGRESS_EVERY = 5.0  # seconds between progress lines


@click.group(help="Drills under load: prove zero failed requests and zero lost writes.")
def drill() -> None:
    pass


@drill.command("load")
@click.option("--url", required=True, help="Front door base URL, e.g. http://10.99.0.10/.")
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds of load. Ctrl-C or SIGTERM ends it early; the writes are still checked.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True, max=1000),
    default=20.0,
    show_default=True,
    help="Requests per second, all workers together.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Worker threads; each is one user with its own cookies.",
)
@click.option("--seed", type=int, default=None, help="Seed of the op mix and payloads.")
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 30),
    default=2.5,
    show_default=True,
    help="Per-request timeout (s).",
)
@click.option(
    "--max-requests",
    type=click.IntRange(1, MAX_REQUESTS_CAP),
    default=200_000,
    show_default=True,
    help="Stop after this many requests whatever the duration.",
)
@click.option(
    "--check-for",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds to keep retrying writes not found intact at the end.",
)
@click.option("--no-check-sessions", is_flag=True, help="Do not check the users' session values.")
@click.option(
    "--record",
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    default=None,
    help="Write every request, acknowledged write and the report as JSON lines.",
)
@click.option(
    "--allow-any-target",
    is_flag=True,
    help="Allow a URL outside loopback and the lab subnet 10.99.0.0/24 (real servers).",
)
@output_option
@verbose_option
def load(
    url: str,
    duration: float,
    rate: float,
    workers: int,
    seed: int | None,
    timeout: float,
    max_requests: int,
    check_for: float,
    no_check_sessions: bool,
    record: Path | None,
    allow_any_target: bool,
    output: OutputFormat,
    verbose: int,
) -> None:
    """Run a steady mix of reads and writes, then check every acknowledged write.

    Exit 0 when no request failed and no acknowledged write is lost; 4 otherwise (after the
    report); 2 for bad usage; 3 when the URL is outside the allowed networks."""
    config = LoadConfig(
        url=url,
        duration=duration,
        rate=rate,
        workers=workers,
        seed=seed,
        timeout=timeout,
        max_requests=max_requests,
        allow_any_target=allow_any_target,
        record_path=record,
    )
    gen = LoadGenerator(config)  # refuses a bad or forbidden URL before any traffic
    chatty = verbose > 0 or err_console.is_terminal
    if chatty:
        shape = f"{rate:g} req/s, {workers} workers, {duration:g}s"
        progress(f"drill {gen.run_id}: {shape} → {escape(gen.base_url)}")
    with _stop_on_signals(gen):
        gen.start()
        while not gen.wait_done(PROGRESS_EVERY):
            if chatty:
                progress(_progress_line(gen.progress()))
    result = gen.wait()
    if chatty:
        n = len(result.acks)
        progress(f"load done ({result.stopped_by}); checking {n} acknowledged writes")
    check = check_writes(result, retry_for=check_for, check_sessions=not no_check_sessions)
    report = build_report(result, check)
    doc = report.to_dict()
    if record is not None:
        _append_report(record, doc, check)
    emit(doc, output, render_table)
    if not report.ok:
        raise Unhealthy(f"drill failed: {report.summary()}")


def _progress_line(p: Progress) -> str:
    counts = f"{p.requests} requests, {p.failed} failed, {p.acked} writes acknowledged"
    return f"{p.elapsed:.0f}s: {counts}"


def _append_report(path: Path, doc: dict[str, object], check: CheckResult) -> None:
    writer = RecordWriter(path, append=True)
    try:
        writer.write("check", asdict(check))
        writer.write("report", doc)
    finally:
        writer.close()


@contextmanager
def _stop_on_signals(gen: LoadGenerator) -> Iterator[None]:
    """First SIGINT/SIGTERM: stop the load, then check and report. Second: abort (exit 130)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    asked = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if asked.is_set():
            raise KeyboardInterrupt
        asked.set()
        name = signal.Signals(signum).name
        progress(f"{name}: stopping the load, then checking ({name} again aborts)")
        gen.stop()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)
