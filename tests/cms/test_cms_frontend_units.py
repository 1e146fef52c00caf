"""Runs the frontend's pure-helper tests (frontend_units.test.js) with node's own runner."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cms_stack import NODE


def test_frontend_pure_helpers() -> None:
    test_file = Path(__file__).with_name("frontend_units.test.js")
    result = subprocess.run(
        [str(NODE), "--test", str(test_file)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
    assert "# pass 5" in result.stdout
