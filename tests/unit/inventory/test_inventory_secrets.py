"""Secrets: references, resolution rules, and that values never show by accident."""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ENV, SECRET_VALUES

from hapair.errors import InventoryError
from hapair.inventory import REDACTED, Secret, SecretError, SecretRef, load_inventory, redact
from hapair.inventory.secrets import parse_ref, read_secret_file, resolve_ref

FILE_REF = SecretRef("file", "secrets/pg")


def make_secret(value: str = "s3cr3t-value") -> Secret:
    return Secret(value, FILE_REF)


# --- the value object -------------------------------------------------------------------------


def test_secret_hides_its_value_in_every_text_form() -> None:
    s = make_secret()
    assert str(s) == "***"
    assert repr(s) == "Secret(***, file:secrets/pg)"
    assert f"{s}" == "***" and f"{s:>20}" == "***" and "%s" % s == "***"  # noqa: UP031
    assert json.dumps({"pw": s}, default=str) == '{"pw": "***"}'
    assert s.reveal() == "s3cr3t-value"


def test_secret_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("password is %s (%r)", make_secret(), make_secret())
    assert "s3cr3t" not in caplog.text


def test_secret_cannot_be_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(make_secret())


def test_secret_equality_uses_value_and_reference() -> None:
    assert make_secret("a") == make_secret("a")
    assert make_secret("a") != make_secret("b")
    assert Secret("a", SecretRef("env", "A")) != make_secret("a")


def test_inventory_dumps_and_reprs_are_redacted(inv_dir: Path) -> None:
    inv = load_inventory("inventory.yaml", env=ENV)
    texts = [
        inv.model_dump_json(),
        json.dumps(inv.model_dump(mode="json")),
        repr(inv),
        str(inv),
        repr(inv.services.postgres),
    ]
    for text in texts:
        for value in SECRET_VALUES:
            assert value not in text
    assert inv.model_dump(mode="json")["services"]["redis"]["password"] == REDACTED


def test_inventory_lists_its_secrets(inv_dir: Path) -> None:
    inv = load_inventory("inventory.yaml", env=ENV)
    refs = {path: s.ref.describe() for path, s in inv.secrets().items()}
    assert refs == {
        "services.postgres.password": "file:secrets/pg",
        "services.postgres.superuser_password": "env:HAPAIR_TEST_PG_SUPERUSER",
        "services.redis.password": "file:secrets/redis",
        "services.storage.access_key": "file:secrets/s3_access",
        "services.storage.secret_key": "file:secrets/s3_secret",
    }
    assert sorted(s.reveal() for s in inv.secrets().values()) == sorted(SECRET_VALUES)


# --- redact() ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "values", "expect"),
    [
        ("connect with pw=hunter2 ok", ["hunter2"], "connect with pw=*** ok"),
        ("hunter2hunter2", ["hunter2"], "******"),
        ("no secret here", ["hunter2"], "no secret here"),
        ("longer: abcdef, short: abc", ["abc", "abcdef"], "longer: ***, short: ***"),
        ("postgresql://u:p%40ss%2Fx@h/db", ["p@ss/x"], "postgresql://u:***@h/db"),
        ("form a+b%26c", ["a b&c"], "form ***"),
        ("multi\nline secret\nhere", ["line secret"], "multi\n***\nhere"),
        ("anything", [], "anything"),
    ],
)
def test_redact(text: str, values: list[str], expect: str) -> None:
    assert redact(text, [make_secret(v) for v in values]) == expect


def test_redact_accepts_the_inventory_mapping(inv_dir: Path) -> None:
    inv = load_inventory("inventory.yaml", env=ENV)
    log = " | ".join(SECRET_VALUES)
    assert redact(log, inv.secrets()) == " | ".join(["***"] * len(SECRET_VALUES))


# --- references -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expect"),
    [
        ({"file": "secrets/pg"}, SecretRef("file", "secrets/pg")),
        ({"file": "/run/secrets/pg"}, SecretRef("file", "/run/secrets/pg")),
        ({"env": "PG_PASSWORD"}, SecretRef("env", "PG_PASSWORD")),
    ],
)
def test_parse_ref(raw: object, expect: SecretRef) -> None:
    assert parse_ref(raw) == expect


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("inline", "a secret must be a reference, not an inline value"),
        (None, "a secret must be a reference, not an inline value"),
        ({}, "a secret reference has exactly one key"),
        ({"file": "a", "env": "B"}, "a secret reference has exactly one key"),
        ({"vault": "x"}, "unknown key 'vault' in secret reference"),
        ({"file": ""}, "secret reference file: expected a non-empty string"),
        ({"env": 3}, "secret reference env: expected a non-empty string"),
        ({"env": "1BAD"}, "'1BAD' is not an environment variable name"),
    ],
)
def test_parse_ref_rejects(raw: object, problem: str) -> None:
    with pytest.raises(SecretError) as err:
        parse_ref(raw)
    assert str(err.value).startswith(problem)


def test_env_secret(tmp_path: Path) -> None:
    s = resolve_ref(SecretRef("env", "PW"), tmp_path, {"PW": "from-env\n"})
    assert s.reveal() == "from-env"
    with pytest.raises(SecretError, match="^environment variable PW is not set$"):
        resolve_ref(SecretRef("env", "PW"), tmp_path, {})
    with pytest.raises(SecretError, match="^environment variable PW is empty$"):
        resolve_ref(SecretRef("env", "PW"), tmp_path, {"PW": ""})


# --- secret files -----------------------------------------------------------------------------


def write(path: Path, content: str, mode: int = 0o600) -> Path:
    return write_bytes(path, content.encode(), mode)


def write_bytes(path: Path, content: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(content)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("content", "value"),
    [
        ("pw\n", "pw"),  # one trailing newline is the file's, not the secret's
        ("pw\r\n", "pw"),
        ("pw", "pw"),
        ("pw\n\n", "pw\n"),  # only one is stripped
        (" pw ", " pw "),  # spaces are part of the value
    ],
)
def test_secret_file_value(tmp_path: Path, content: str, value: str) -> None:
    assert read_secret_file(write(tmp_path / "s", content), "s") == value


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_private_modes_are_accepted(tmp_path: Path, mode: int) -> None:
    assert read_secret_file(write(tmp_path / "s", "pw", mode), "s") == "pw"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o610, 0o601, 0o644, 0o666])
def test_modes_open_to_group_or_others_are_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(SecretError) as err:
        read_secret_file(write(tmp_path / "s", "pw", mode), "secrets/s")
    assert str(err.value) == (
        f"secret file secrets/s is accessible by group/others (mode {mode:04o}); chmod 600 it"
    )


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        (lambda p: None, "secret file secrets/s missing"),
        (lambda p: write(p, ""), "secret file secrets/s is empty"),
        (lambda p: write(p, "\n"), "secret file secrets/s is empty"),
        (lambda p: p.mkdir(), "secret file secrets/s is not a regular file"),
        (lambda p: write_bytes(p, b"\xff\xfe"), "secret file secrets/s is not UTF-8 text"),
    ],
    ids=["missing", "empty", "only-newline", "directory", "not-utf8"],
)
def test_unusable_secret_files(
    tmp_path: Path, setup: Callable[[Path], object], problem: str
) -> None:
    setup(tmp_path / "s")
    with pytest.raises(SecretError) as err:
        read_secret_file(tmp_path / "s", "secrets/s")
    assert str(err.value) == problem


def test_loose_secret_file_in_an_inventory(inv_dir: Path) -> None:
    (inv_dir / "secrets" / "redis").chmod(0o644)
    with pytest.raises(InventoryError) as err:
        load_inventory("inventory.yaml", env=ENV)
    assert str(err.value) == (
        "inventory.yaml: services.redis.password: secret file secrets/redis is accessible by"
        " group/others (mode 0644); chmod 600 it"
    )


def test_loose_ssh_key_in_an_inventory(inv_dir: Path) -> None:
    (inv_dir / "keys" / "id_ed25519").chmod(0o640)
    with pytest.raises(InventoryError) as err:
        load_inventory("inventory.yaml", env=ENV)
    assert str(err.value) == (
        "inventory.yaml: hosts[0].ssh.key: ssh key file keys/id_ed25519 is accessible by"
        " group/others (mode 0640); chmod 600 it"
    )
