"""`hapair monitor --once` with damping: the inventory's `monitor:` section is read, the
clocks live in the state file (an alert fires at the second failing run), `--once` without
`--state` does not damp, `--repeat-minutes` overrides renotify_s; webhooks recorded."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import pytest
from monitor_fakes import led_by
from ruamel.yaml import YAML

import hapair.monitor.webhook as webhook
from hapair.cli.observe import Source, monitor_cmd
from hapair.errors import HapairError
from hapair.inventory import Inventory
from hapair.observe import PairSnapshot
from hapair.observe.snapshot import HttpResult

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backup"))
from backup_fakes import write_inventory  # noqa: E402

HOOK = "http://127.0.0.1:48998/hook"  # never contacted: http_post is replaced


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []

    def post(_url: str, body: dict[str, Any]) -> int:
        bodies.append(body)
        return 204

    monkeypatch.setattr(webhook, "http_post", post)
    return bodies


def inventory(tmp_path: Path, monitor: dict[str, Any]) -> Path:
    path = write_inventory(tmp_path)
    yaml = YAML(typ="safe", pure=True)
    data = yaml.load(path.read_text())
    data["monitor"] = monitor
    with path.open("w") as fh:
        yaml.dump(data, fh)
    return path


def door_down(at: float) -> PairSnapshot:
    return replace(led_by("node1", at=at), front_door=HttpResult("front_door", "http://x/", 502))


def once(inv: Path, snapshot: PairSnapshot, *extra: str) -> int:
    @contextmanager
    def factory(_inv: Inventory) -> Iterator[Source]:
        yield Source(lambda: snapshot, lambda text: text)

    root = click.Group("hapair")
    root.add_command(monitor_cmd)
    try:
        rc = root.main(args=["monitor", "-i", str(inv), "--once", "--backup-max-age-hours", "0",
                             "--webhook", HOOK, *extra], prog_name="hapair",
                       standalone_mode=False, obj={"observe_source": factory})
    except HapairError as exc:
        print(f"hapair: {exc}", file=sys.stderr)
        return exc.exit_code
    return rc if isinstance(rc, int) else 0


def test_once_with_state_damps_across_runs(tmp_path: Path, sent: list[dict[str, Any]],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    inv = inventory(tmp_path, {"alerts": [{"match": "front_door", "for_s": 120}]})
    state = ["--state", str(tmp_path / "state.json")]
    assert once(inv, door_down(0), *state) == 0
    assert sent == []  # failing, not yet for 120 s
    assert "alerts fire after 15 s (critical)" in capsys.readouterr().err
    assert once(inv, door_down(60), *state) == 0
    assert sent == []
    assert once(inv, door_down(120), *state) == 0
    assert [(b["alert"], b["status"], b["since"]) for b in sent] == [
        ("front_door", "firing", "2025-06-15T15:06:40Z")]
    assert once(inv, led_by("node1", at=130), *state) == 0  # clear, not yet 60 s
    assert once(inv, led_by("node1", at=190), *state) == 0
    assert [b["status"] for b in sent] == ["firing", "resolved"]


def test_once_without_state_does_not_damp(tmp_path: Path, sent: list[dict[str, Any]]) -> None:
    inv = inventory(tmp_path, {"alerts": [{"match": "front_door", "for_s": 120}]})
    assert once(inv, door_down(0)) == 0
    assert [(b["alert"], b["status"]) for b in sent] == [("front_door", "firing")]


def test_repeat_minutes_overrides_the_inventory(tmp_path: Path, sent: list[dict[str, Any]],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    inv = inventory(tmp_path, {"renotify_s": 600})
    state = ["--state", str(tmp_path / "state.json")]
    assert once(inv, led_by("node1"), *state) == 0
    assert "renotify every 600 s" in capsys.readouterr().err
    assert once(inv, led_by("node1"), *state, "--repeat-minutes", "2") == 0
    assert "renotify every 120 s" in capsys.readouterr().err


def test_a_bad_monitor_section_is_exit_2(tmp_path: Path, sent: list[dict[str, Any]],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    inv = inventory(tmp_path, {"alerts": [{"match": "front_door", "for_s": "soon"}]})
    assert once(inv, led_by("node1")) == 2
    assert f"{inv}: monitor.alerts[0].for_s: " in capsys.readouterr().err
    assert sent == []
