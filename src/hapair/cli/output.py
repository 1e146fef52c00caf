"""Human and JSON output. JSON goes to stdout as exactly one document; all else to stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console

from hapair.cli.options import OutputFormat

# Progress, logs and errors: stderr. Colour only on a terminal (rich decides).
err_console = Console(stderr=True)
out_console = Console()


def emit(data: Any, output: OutputFormat, render: Callable[[Any, Console], None]) -> None:
    """Write `data` as one JSON document, or let `render` draw it for humans."""
    if output is OutputFormat.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
        sys.stdout.flush()
    else:
        render(data, out_console)


def progress(message: str) -> None:
    """A progress line on stderr (never on stdout, so JSON stays parseable)."""
    err_console.print(f"[dim]·[/dim] {message}", highlight=False)
