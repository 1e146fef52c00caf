"""The real `backup` / `restore` click commands over RecordingTransports: exit codes, one JSON
document on stdout (also on failure), usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backup_fakes import (
    BASE,
    ID,
    _stored,
    make_pair,
    psql,
    run_cli,
    transports,
    write_inventory,
)

from hapair.exec.recording import RecordingTransport
from hapair.inventory import Inventory
from hapair.workflows.backup import Pair, Settings
from hapair.workflows.backup.model import FORMAT


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    return write_inventory(tmp_path)


def _obj(t1: RecordingTransport, t2: RecordingTransport,
         seen: list[Settings] | None = None) -> dict[str, object]:
    def factory(_inv: Inventory, settings: Settings) -> Pair:
        if seen is not None:
            seen.append(settings)
        return make_pair(t1, t2)

    return {"backup_pair": factory}


def test_backup_json_document(inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t1, t2 = transports()
    rc = run_cli(["backup", "-i", str(inv), "-o", "json", "--dry-run"], _obj(t1, t2))
    out = capsys.readouterr().out
    assert rc == 0
    doc = json.loads(out)  # exactly one document
    assert doc["ok"] and doc["dry_run"] and doc["node"] == "node2"


def test_no_source_exits_3_with_a_json_error(inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t1, t2 = transports(standby=False)
    t1.on(psql(), returncode=2, stderr="psql: error: connection refused\n")
    rc = run_cli(["backup", "-i", str(inv), "-o", "json"], _obj(t1, t2))
    captured = capsys.readouterr()
    assert rc == 3
    doc = json.loads(captured.out)
    assert doc["ok"] is False and doc["exit_code"] == 3
    assert doc["error"].startswith("no backup taken: no node to back up from")
    assert "complete" not in captured.err and "ok" not in captured.err.split()


def test_failed_step_exits_1_and_says_so(inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t1, t2 = transports()
    t2.on(psql(db="cms"), returncode=3, stderr="ERROR:  permission denied for table secrets\n")
    rc = run_cli(["backup", "-i", str(inv)], _obj(t1, t2))
    captured = capsys.readouterr()
    assert rc == 1
    assert captured.out == ""  # no result table after a failure
    assert "permission denied for table secrets" in captured.err and "FAILED" in captured.err
    made = next(c for c in t2.commands if c[0] == "mkdir")[-1]
    assert made.endswith("-logical.partial")
    assert ("rm", "-rf", "--", made) in t2.commands
    assert not any(c[0] == "mv" for c in t2.commands)


def test_verify_failure_exits_4(inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t1, t2 = transports()
    t2.on(["find", BASE, "-mindepth", "1", "-maxdepth", "1", "-type", "d", "-printf", "%f\\n"],
          stdout=f"{ID}\n")
    manifest = {"format": FORMAT, "id": ID, "kind": "logical", "cluster": "cms",
                "source": {}, "postgres": {}, "database": {"name": "cms"},
                "files": [{"name": "cms.dump", "bytes": 3, "sha256": "c" * 64}],
                "started_at": "", "finished_at": "", "tools": {}}
    t2.files[f"{BASE}/{ID}/manifest.json"] = _stored(json.dumps(manifest).encode())
    t2.on(["sha256sum", "--", f"{BASE}/{ID}/cms.dump"], stdout=f"{'d' * 64}  x\n")
    rc = run_cli(["backup", "verify", "-i", str(inv)], _obj(t1, t2))
    captured = capsys.readouterr()
    assert rc == 4
    assert "verification FAILED" in captured.out
    assert f"backup {ID} FAILED verification: cms.dump: " in captured.err
    saved = json.loads(t2.text(f"{BASE}/{ID}/manifest.json"))
    assert saved["verification"]["result"] == "failed"


def test_restore_without_yes_off_a_terminal_is_refused(
    inv: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    t1, t2 = transports()
    t2.on(["find", BASE, "-mindepth", "1", "-maxdepth", "1", "-type", "d", "-printf", "%f\\n"],
          stdout=f"{ID}\n")
    manifest = {"format": FORMAT, "id": ID, "kind": "logical", "cluster": "cms",
                "source": {}, "postgres": {}, "database": {"name": "cms"},
                "files": [], "started_at": "", "finished_at": "", "tools": {}}
    t2.files[f"{BASE}/{ID}/manifest.json"] = _stored(json.dumps(manifest).encode())
    t1.on(psql(name="cms_new"), stdout="0\n")
    rc = run_cli(["restore", ID, "--into", "cms_new", "-i", str(inv)], _obj(t1, t2))
    assert rc == 3
    assert "pass -y" in capsys.readouterr().err
    assert not any(b"CREATE" in (c.input or b"") for c in t1.calls)


@pytest.mark.parametrize(
    "args",
    [
        ["backup"],  # no inventory
        ["backup", "--keep", "2", "list"],  # an option of `backup` itself given to `list`
        ["backup", "--kind", "incremental"],
        ["backup", "--keep", "0"],
        ["restore", ID],  # --into is required
        ["restore", ID, "--into", "Bad-Name", "-y"],
        ["backup", "verify", "not-an-id"],
        ["backup", "--backup-dir", "relative/dir"],
    ],
)
def test_usage_errors_exit_2(args: list[str], inv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HAPAIR_INVENTORY", raising=False)
    t1, t2 = transports()
    full = args if args == ["backup"] else [*args, "-i", str(inv)]
    assert run_cli(full, _obj(t1, t2)) == 2


def test_group_inventory_and_locations_reach_the_subcommand(
    inv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t1, t2 = transports()
    seen: list[Settings] = []
    rc = run_cli(["backup", "-i", str(inv), "--backup-dir", "/srv/b", "list", "--socket-dir",
                  "/tmp/s"], _obj(t1, t2, seen))
    assert rc == 0, capsys.readouterr().err
    assert seen == [Settings(backup_dir="/srv/b", socket_dir="/tmp/s")]
    assert capsys.readouterr().out.strip() == "no backups found"
