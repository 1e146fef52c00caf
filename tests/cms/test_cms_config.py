"""Configuration: env file parsing, validation errors that name the variable, not the value."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cms_backend.config import (
    REQUIRED,
    ConfigError,
    build_config,
    endpoint_url,
    merged_environment,
    parse_bool,
    parse_env_file,
    read_env_file,
)
from cms_stack import BACKEND_DIR, write_private

FULL = {
    "POSTGRES_HOST": "db",
    "POSTGRES_DB": "cms",
    "POSTGRES_USER": "cms",
    "POSTGRES_PASSWORD": "pg-secret",
    "REDIS_URL": "redis://:r-secret@127.0.0.1:6379/0",
    "MINIO_ENDPOINT": "minio:9000",
    "MINIO_ACCESS_KEY": "ak",
    "MINIO_SECRET_KEY": "s3-secret",
    "DJANGO_SECRET_KEY": "dj-secret",
    "DJANGO_ALLOWED_HOSTS": "a.example, b.example,",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1\nB=two words\n", {"A": "1", "B": "two words"}),
        ("# comment\n\n  A = 1  \n", {"A": "1"}),
        ("export A=1", {"A": "1"}),
        ("A='quoted # not a comment'", {"A": "quoted # not a comment"}),
        ('A="x=y"', {"A": "x=y"}),
        ("A=p@ss#w=rd$HOME", {"A": "p@ss#w=rd$HOME"}),
        ("A=", {"A": ""}),
        ("A='it'\"'\"'s'", {"A": "it's"}),
        ("A='$HOME \\n'", {"A": "$HOME \\n"}),
        ("A=''", {"A": ""}),
        ("A=unquoted 'inner' quotes", {"A": "unquoted 'inner' quotes"}),
        ("A=1\nA=2", {"A": "2"}),
        ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
    ],
)
def test_parse_env_file(text: str, expected: dict[str, str]) -> None:
    assert parse_env_file(text) == expected


@pytest.mark.parametrize(
    "text",
    ["A=1\nno equals sign", "=value", "1A=x", "A B=1", "-x=1", "A='unbalanced ", "A='a' 'b' "],
)
def test_parse_env_file_rejects_bad_lines_without_echoing_them(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_env_file(text + "SECRET")
    assert "line" in str(info.value)
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize("value", ["plain", "p@ss#w=rd $x", "it's", 'say "hi"', "tab\there", ""])
def test_shell_quoted_values_round_trip(value: str) -> None:
    # What a deployment tool writes with shlex.quote (also sourceable by sh) reads back as-is.
    assert parse_env_file(f"K={shlex.quote(value)}\n") == {"K": value}


def test_env_file_fills_only_what_the_environment_lacks(tmp_path: Path) -> None:
    path = tmp_path / "cms.env"
    write_private(path, "POSTGRES_HOST=from-file\nPOSTGRES_DB=filedb\n")
    merged = merged_environment({"CMS_ENV_FILE": str(path), "POSTGRES_HOST": "from-env"})
    assert merged["POSTGRES_HOST"] == "from-env"
    assert merged["POSTGRES_DB"] == "filedb"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_env_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "cms.env"
    write_private(path, "A=1\n")
    path.chmod(mode)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_env_file(str(path))


def test_missing_env_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CMS_ENV_FILE"):
        merged_environment({"CMS_ENV_FILE": str(tmp_path / "absent.env")})


def test_build_config_reports_every_missing_name() -> None:
    env = {k: v for k, v in FULL.items() if k not in ("POSTGRES_HOST", "REDIS_URL")}
    with pytest.raises(ConfigError) as info:
        build_config(env)
    assert "POSTGRES_HOST" in str(info.value) and "REDIS_URL" in str(info.value)
    assert "POSTGRES_DB" not in str(info.value)


def test_build_config_defaults() -> None:
    config = build_config(FULL, default_node="n1")
    assert config.postgres_port == 5432
    assert config.bucket_public == "media-public"
    assert config.bucket_private == "media-private"
    assert config.debug is False
    assert config.allowed_hosts == ("a.example", "b.example")
    assert config.s3_endpoint_url == "http://minio:9000"
    assert config.node_name == "n1"
    assert "secret" not in repr(config)


@pytest.mark.parametrize(
    ("override", "name"),
    [
        ({"POSTGRES_PORT": "x"}, "POSTGRES_PORT"),
        ({"POSTGRES_PORT": "70000"}, "POSTGRES_PORT"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"MINIO_USE_SSL": "2"}, "MINIO_USE_SSL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"MINIO_ENDPOINT": "ftp://x"}, "MINIO_ENDPOINT"),
        ({"DJANGO_ALLOWED_HOSTS": " , "}, "DJANGO_ALLOWED_HOSTS"),
        ({"CMS_LOG_LEVEL": "loud"}, "CMS_LOG_LEVEL"),
    ],
)
def test_build_config_names_the_bad_variable(override: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config(FULL | override)
    assert str(info.value).startswith(name)


@pytest.mark.parametrize(
    ("value", "ssl", "expected"),
    [
        ("minio:9000", False, "http://minio:9000"),
        ("minio:9000", True, "https://minio:9000"),
        ("http://10.0.0.5:9000", True, "http://10.0.0.5:9000"),
        ("https://s3.example/", False, "https://s3.example"),
        ("[::1]:9000", False, "http://[::1]:9000"),
    ],
)
def test_endpoint_url(value: str, ssl: bool, expected: str) -> None:
    assert endpoint_url(value, ssl) == expected


@pytest.mark.parametrize("value", ["minio:notaport", "http://minio:9000/path", "://", ""])
def test_endpoint_url_rejects(value: str) -> None:
    with pytest.raises(ConfigError, match="MINIO_ENDPOINT"):
        endpoint_url(value, False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("TRUE", True), (" on ", True), ("0", False), ("no", False), ("", False)],
)
def test_parse_bool(value: str, expected: bool) -> None:
    assert parse_bool("X", value) is expected


def _manage_check(env_file: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "CMS_ENV_FILE": str(env_file), "LANG": "C.UTF-8"}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_startup_fails_clearly_naming_the_missing_variable(tmp_path: Path) -> None:
    env_file = tmp_path / "cms.env"
    values = {k: v for k, v in FULL.items() if k != "POSTGRES_HOST"}
    write_private(env_file, "".join(f"{k}={v}\n" for k, v in values.items()))
    result = _manage_check(env_file)
    assert result.returncode != 0
    assert "missing required configuration: POSTGRES_HOST" in result.stderr
    for secret in ("pg-secret", "r-secret", "s3-secret", "dj-secret"):
        assert secret not in result.stderr + result.stdout


def test_startup_with_complete_config_passes_checks(tmp_path: Path) -> None:
    env_file = tmp_path / "cms.env"
    write_private(env_file, "".join(f"{k}={v}\n" for k, v in FULL.items()))
    result = _manage_check(env_file)
    assert result.returncode == 0, result.stderr
    assert set(REQUIRED) <= set(FULL)
    assert os.stat(env_file).st_mode & 0o077 == 0
