"""`hapair rollback` refuses (exit 3) before touching any host when the journal holds no
completed upgrade, and rejects a non-node `--to` as bad usage (exit 2)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hapair.cli.rollback import rollback_cmd
from hapair.errors import ExitCode, Refused, UsageError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backup"))
from backup_fakes import write_inventory  # noqa: E402


@pytest.mark.parametrize("flags", [["-y"], ["--dry-run"], ["-y", "-o", "json"]])
def test_refused_without_a_completed_upgrade(tmp_path: Path, flags: list[str]) -> None:
    inv = write_inventory(tmp_path)
    res = CliRunner().invoke(rollback_cmd, ["-i", str(inv), *flags])
    assert isinstance(res.exception, Refused), res.output
    assert res.exception.exit_code == ExitCode.REFUSED == 3
    assert "no completed `hapair upgrade`" in str(res.exception)
    assert res.stdout == ""  # no half document on stdout
    assert not (tmp_path / "runs" / "rollback").exists()  # no journal, no lock taken


def test_to_must_be_a_data_node(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path)
    res = CliRunner().invoke(rollback_cmd, ["-i", str(inv), "--to", "nosuchnode", "-y"])
    assert isinstance(res.exception, UsageError)
    assert res.exception.exit_code == 2
