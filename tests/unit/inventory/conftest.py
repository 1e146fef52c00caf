"""Fixtures: a directory holding a valid inventory with its SSH key and 0600 secret files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

DATA = Path(__file__).parent / "data"

# Distinctive values, so a test can search any output for them.
SECRET_FILES = {
    "secrets/pg": "pg-S3cret-value\n",  # the trailing newline is not part of the value
    "secrets/redis": "redis pass/with?odd&chars",
    "secrets/s3_access": "AKIAEXAMPLEACCESS",
    "secrets/s3_secret": "s3-secret-key-value-0123456789",
}
ENV = {"HAPAIR_TEST_PG_SUPERUSER": "superuser-from-env"}
SECRET_VALUES = [v.rstrip("\n") for v in SECRET_FILES.values()] + list(ENV.values())


def make_support_files(root: Path) -> None:
    """The files good.yaml refers to: an SSH key and the secrets, all mode 0600."""
    for rel, content in [("keys/id_ed25519", "not a real key\n"), *SECRET_FILES.items()]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(0o600)


@pytest.fixture
def inv_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path with inventory.yaml (= data/good.yaml) and its files; also the cwd."""
    make_support_files(tmp_path)
    shutil.copy(DATA / "good.yaml", tmp_path / "inventory.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def good_data() -> dict[str, Any]:
    return YAML(typ="safe", pure=True).load((DATA / "good.yaml").read_text())


def dump(data: Any, path: Path) -> None:
    YAML(typ="safe", pure=True).dump(data, path)


_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def split_path(path: str) -> list[str | int]:
    """'hosts[1].address' -> ['hosts', 1, 'address'] (the inverse of the messages' form)."""
    return [int(i) if i else k for k, i in _PART.findall(path)]


def set_path(data: Any, path: str, value: Any) -> None:
    *parents, last = split_path(path)
    for part in parents:
        data = data[part]
    if isinstance(last, int) and last == len(data):
        data.append(value)
    else:
        data[last] = value


def delete_path(data: Any, path: str) -> None:
    *parents, last = split_path(path)
    for part in parents:
        data = data[part]
    del data[last]
