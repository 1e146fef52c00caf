"""`hapair rollback` on an inventory of compose hosts takes the compose plan: `--dry-run`
shows its steps (one JSON document, no secret), and refusals are exit 3 with nothing on
stdout and no journal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from rollback_compose_fakes import SECRETS, completed_upgrade, hosts, members, write_inventory

import hapair.cli.rollback as cli
import hapair.workflows.rollback_compose.preflight as preflight
from hapair.errors import ExitCode, Refused
from hapair.inventory import Inventory
from hapair.workflows.context import WorkflowContext


@pytest.fixture
def inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    transports = hosts()

    @contextmanager
    def fake_context(inv: Inventory) -> Iterator[WorkflowContext]:
        yield WorkflowContext(inv, dict(transports))  # type: ignore[arg-type]

    monkeypatch.setattr(cli, "workflow_context", fake_context)
    monkeypatch.setattr(preflight, "cluster", lambda p: members())
    return write_inventory(tmp_path)


def test_dry_run_shows_the_compose_plan(inventory: Path) -> None:
    completed_upgrade(inventory.parent / "runs")
    res = CliRunner().invoke(cli.rollback_cmd, ["-i", str(inventory), "--dry-run", "-o",
                                                "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["target"], doc["peer"], doc["resuming"]) == ("node1", "node2", False)
    ids = [s["id"] for s in doc["plan"]["steps"]]
    assert ids[0] == "rollback/node1/compose.redis-master"
    assert "rollback/node1/compose.pg-handback" in ids
    assert doc["preflight"]["facts"]["recreate"] == ["backend", "worker"]
    for secret in SECRETS.values():
        assert secret not in res.stdout
    assert not (inventory.parent / "runs" / "rollback").exists()  # a dry run writes nothing


def test_dry_run_renders_a_table(inventory: Path) -> None:
    completed_upgrade(inventory.parent / "runs")
    res = CliRunner().invoke(cli.rollback_cmd, ["-i", str(inventory), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "compose.pg-handback" in res.stdout and "single server node1" in res.stdout


@pytest.mark.parametrize("flags", [["-y"], ["--dry-run"], ["-y", "-o", "json"]])
def test_refused_without_a_completed_upgrade(inventory: Path, flags: list[str]) -> None:
    res = CliRunner().invoke(cli.rollback_cmd, ["-i", str(inventory), *flags])
    assert isinstance(res.exception, Refused), res.output
    assert res.exception.exit_code == ExitCode.REFUSED == 3
    assert "no completed `hapair upgrade`" in str(res.exception)
    assert res.stdout == ""
    assert not (inventory.parent / "runs" / "rollback").exists()


def test_refused_when_the_data_is_on_node2(inventory: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    completed_upgrade(inventory.parent / "runs")
    monkeypatch.setattr(preflight, "cluster", lambda p: members("node2"))
    res = CliRunner().invoke(cli.rollback_cmd, ["-i", str(inventory), "-y"])
    assert isinstance(res.exception, Refused)
    assert "hapair switchover --to node1 --redis" in str(res.exception)
