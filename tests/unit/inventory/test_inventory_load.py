"""load_inventory: the good inventory, and one exact error line per kind of mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, ENV, delete_path, dump, good_data, set_path
from pydantic import ValidationError
from ruamel.yaml import YAML

from hapair.errors import ExitCode, InventoryError
from hapair.inventory import NO_WITNESS_WARNING, load_inventory

CASES: list[dict[str, Any]] = YAML(typ="safe", pure=True).load(DATA / "bad_cases.yaml")
BAD_YAML = sorted((DATA / "bad_yaml").glob("*.yaml"))


def load(path: str | Path = "inventory.yaml"):
    return load_inventory(path, env=ENV)


def test_good_inventory_loads(inv_dir: Path) -> None:
    inv = load()
    assert (inv.version, inv.cluster, inv.durability) == (1, "shop", "sync")
    assert [h.name for h in inv.nodes] == ["node1", "node2"]
    assert inv.witness is not None and inv.witness.name == "witness"
    assert inv.warnings == ()
    assert inv.hosts_with_role("lb") == (inv.host("witness"),)
    assert inv.base_dir == inv_dir and inv.source == "inventory.yaml"


def test_defaults_are_filled(inv_dir: Path) -> None:
    inv = load()
    node1, node2, witness = inv.hosts
    assert node1.runtime == "supervisor" and node1.compose is None
    assert node1.supervisor is not None
    assert node1.supervisor.config == "/etc/supervisor/supervisord.conf"
    assert node1.supervisor.include_dir == "/etc/supervisor/conf.d"
    assert witness.supervisor is not None
    assert witness.supervisor.config == "/etc/supervisord.conf"  # set in the file
    assert witness.supervisor.include_dir == "/etc/supervisor/conf.d"  # default
    assert (node1.ssh.user, node1.ssh.port) == ("root", 22)
    assert (node2.ssh.user, node2.ssh.port) == ("deploy", 2222)
    assert node2.supervisor is None and node2.compose is not None
    assert node2.compose.project == "shop" and node2.compose.env_files == ("/srv/shop/.env",)
    assert inv.front_door.port == 80
    s = inv.services
    ports = [s.postgres.port, s.redis.port, s.storage.port, s.http_lb.port]
    assert ports == [5432, 6379, 9000, 80]
    assert s.backend.env_file is None


def test_paths_resolve_against_the_inventory_file_not_the_cwd(
    inv_dir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    inv = load(inv_dir / "inventory.yaml")
    assert inv.hosts[0].ssh.key == inv_dir / "keys" / "id_ed25519"
    assert inv.services.postgres.password.reveal() == "pg-S3cret-value"
    assert inv.base_dir == inv_dir


def test_ssh_key_in_home(inv_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = inv_dir / "home"
    (home / ".ssh").mkdir(parents=True)
    (inv_dir / "keys" / "id_ed25519").rename(home / ".ssh" / "id_ed25519")
    monkeypatch.setenv("HOME", str(home))
    data = good_data()
    for i in range(3):
        set_path(data, f"hosts[{i}].ssh.key", "~/.ssh/id_ed25519")
    dump(data, inv_dir / "inventory.yaml")
    assert load().hosts[2].ssh.key == home / ".ssh" / "id_ed25519"


def test_host_key_comment_is_dropped(inv_dir: Path) -> None:
    key = load().host("node2").ssh.host_key
    assert key == "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"


def test_addresses_are_normalised(inv_dir: Path) -> None:
    data = good_data()
    set_path(data, "hosts[0].address", "FD00:0:0::11")
    dump(data, inv_dir / "inventory.yaml")
    assert load().hosts[0].address == "fd00::11"


def test_no_witness_is_a_warning_not_an_error(inv_dir: Path) -> None:
    data = good_data()
    delete_path(data, "hosts[2]")
    dump(data, inv_dir / "inventory.yaml")
    inv = load()
    assert inv.witness is None
    assert inv.warnings == (NO_WITNESS_WARNING,)
    assert NO_WITNESS_WARNING == "no witness: automatic failover is off; manual failover only"


def test_unknown_host_name(inv_dir: Path) -> None:
    with pytest.raises(KeyError, match="no host named 'node3'"):
        load().host("node3")


def test_models_are_frozen(inv_dir: Path) -> None:
    inv = load()
    with pytest.raises(ValidationError):
        inv.hosts[0].address = "10.0.0.1"  # type: ignore[misc]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_inventory(inv_dir: Path, case: dict[str, Any]) -> None:
    data = good_data()
    for path in case.get("delete", []):
        delete_path(data, path)
    for path, value in case.get("set", {}).items():
        set_path(data, str(path), value)
    dump(data, inv_dir / "inventory.yaml")
    with pytest.raises(InventoryError) as err:
        load()
    assert str(err.value) == case["expect"]
    assert err.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize("src", BAD_YAML, ids=[p.stem for p in BAD_YAML])
def test_bad_yaml(inv_dir: Path, src: Path) -> None:
    text = src.read_text()
    expect = text.splitlines()[0].removeprefix("# expect: ")
    (inv_dir / "inventory.yaml").write_text(text)
    with pytest.raises(InventoryError) as err:
        load()
    assert str(err.value) == expect


def test_error_carries_file_key_path_and_problem(inv_dir: Path) -> None:
    data = good_data()
    set_path(data, "hosts[1].address", "10.0.0.999")
    dump(data, inv_dir / "inventory.yaml")
    with pytest.raises(InventoryError) as err:
        load()
    e = err.value
    assert (e.file, e.key_path) == ("inventory.yaml", "hosts[1].address")
    assert e.problem == "'10.0.0.999' is not a valid IP address"


def test_an_inline_secret_is_not_echoed(inv_dir: Path) -> None:
    data = good_data()
    set_path(data, "services.redis.password", "hunter2-inline")
    dump(data, inv_dir / "inventory.yaml")
    with pytest.raises(InventoryError) as err:
        load()
    assert "hunter2" not in str(err.value)


def test_duplicate_yaml_key_message_has_no_values(inv_dir: Path) -> None:
    (inv_dir / "inventory.yaml").write_text("version: 1\npw: first-value\npw: second-value\n")
    with pytest.raises(InventoryError) as err:
        load()
    assert "value" not in str(err.value)


# --- the file itself --------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as err:
        load(tmp_path / "nope.yaml")
    assert str(err.value) == f"{tmp_path / 'nope.yaml'}: file not found"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as err:
        load(tmp_path)
    assert str(err.value) == f"{tmp_path}: is a directory, not a file"


def test_unreadable_file(inv_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, which can read a 0000 file; so the read itself is made to fail.
    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(InventoryError) as err:
        load()
    assert str(err.value) == "inventory.yaml: cannot read: Permission denied"


def test_not_utf8(inv_dir: Path) -> None:
    (inv_dir / "inventory.yaml").write_bytes(b"version: 1\ncluster: \xff\n")
    with pytest.raises(InventoryError) as err:
        load()
    assert str(err.value) == "inventory.yaml: not UTF-8 text (byte 20)"


def test_unknown_key_that_is_not_a_string(inv_dir: Path) -> None:
    path = inv_dir / "inventory.yaml"
    path.write_text(path.read_text() + "8000: backend\n")
    with pytest.raises(InventoryError) as err:
        load()
    assert str(err.value) == (
        "inventory.yaml: 8000: unknown key '8000' (expected one of: version, cluster,"
        " durability, hosts, front_door, services, monitor)"
    )


def test_empty_supervisor_block_gets_the_defaults(inv_dir: Path) -> None:
    data = good_data()
    set_path(data, "hosts[0].supervisor", None)
    dump(data, inv_dir / "inventory.yaml")
    supervisor = load().hosts[0].supervisor
    assert supervisor is not None and supervisor.include_dir == "/etc/supervisor/conf.d"
