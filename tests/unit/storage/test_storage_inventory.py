"""The inventory's storage fields: defaults, and errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hapair.errors import InventoryError
from hapair.inventory.load import load_inventory

REPO = Path(__file__).resolve().parents[3]
SECRETS = [("lab-ssh/id_ed25519", "key"), ("secrets/postgres_password", "p"),
           ("secrets/postgres_superuser_password", "p"), ("secrets/redis_password", "r"),
           ("secrets/s3_access_key", "AKIAX"), ("secrets/s3_secret_key", "sk-1")]
EXAMPLE = """    router_port: 9010        # the app's S3 endpoint on each node (127.0.0.1): reads local, writes to the writer
    writer_port: 9011        # the write selector behind it (127.0.0.1): the site of the PostgreSQL primary
    replication_interval_s: 5  # each node pulls new objects from its peer this often
    max_delay_s: 30          # promised replication delay: `check` fails beyond it
"""  # noqa: E501 - the example's own lines


def inventory(tmp_path: Path, storage_lines: str | None = None) -> Path:
    text = (REPO / "examples" / "inventory.yaml").read_text()
    assert EXAMPLE in text, "examples/inventory.yaml changed: update this test"
    if storage_lines is not None:
        text = text.replace(EXAMPLE, storage_lines)
    (tmp_path / "inventory.yaml").write_text(text)
    for rel, value in SECRETS:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(value)
        (tmp_path / rel).chmod(0o600)
    return tmp_path / "inventory.yaml"


def test_example_and_defaults(tmp_path: Path) -> None:
    st = load_inventory(str(inventory(tmp_path))).services.storage
    assert (st.router_port, st.writer_port, st.replication_interval_s, st.max_delay_s) == (
        9010, 9011, 5, 30)
    st = load_inventory(str(inventory(tmp_path, ""))).services.storage  # all omitted
    assert (st.router_port, st.writer_port, st.replication_interval_s, st.max_delay_s) == (
        9010, 9011, 5, 30)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("    router_port: 9000\n",
         "inventory.yaml: services.storage.router_port: 9000 is also port"),
        ("    writer_port: 9010\n",
         "inventory.yaml: services.storage.router_port: 9010 is also writer_port"),
        ("    replication_interval_s: 20\n",
         "inventory.yaml: services.storage.max_delay_s: 30 is less than two replication "
         "intervals"),
        ("    replication_interval_s: 0\n", "inventory.yaml: services.storage."
                                            "replication_interval_s"),
        ("    max_delay_s: '30'\n", "inventory.yaml: services.storage.max_delay_s"),
        ("    writer_port: 70000\n", "inventory.yaml: services.storage.writer_port"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, lines: str, message: str) -> None:
    with pytest.raises(InventoryError) as err:
        load_inventory(str(inventory(tmp_path, lines)))
    assert str(err.value).startswith(f"{tmp_path}/{message}"), str(err.value)
