"""Reading a project from its files alone: interpolation, env files, merging -f files."""

from __future__ import annotations

from pathlib import Path

import pytest
from compose_fixtures import COMPOSE_FILE, ENV_FILE

from hapair.compose.offline import (
    InterpolationError,
    default_compose_files,
    interpolate,
    load_offline,
    merge_documents,
    parse_env_file,
)
from hapair.errors import UsageError

ENV = {"SET": "v", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expected", "missing"),
    [
        ("plain", "plain", []),
        ("$SET/${SET}", "v/v", []),
        ("$$SET", "$SET", []),
        ("$${SET}", "${SET}", []),
        ("${UNSET}", "", ["UNSET"]),
        ("$UNSET-x", "-x", ["UNSET"]),
        ("${UNSET:-d}", "d", []),
        ("${EMPTY:-d}", "d", []),
        ("${EMPTY-d}", "", []),
        ("${UNSET-d}", "d", []),
        ("${SET:-d}", "v", []),
        ("${SET:+alt}", "alt", []),
        ("${EMPTY:+alt}", "", []),
        ("${EMPTY+alt}", "alt", []),
        ("${UNSET:-${SET}-x}", "v-x", []),
        ("${UNSET:-${ALSO_UNSET}}", "", ["ALSO_UNSET"]),
        ("cost $5", "cost $5", []),
    ],
)
def test_interpolation(text: str, expected: str, missing: list[str]) -> None:
    seen: list[str] = []
    assert interpolate(text, ENV, seen.append) == expected
    assert seen == missing


@pytest.mark.parametrize("text", ["${UNSET:?set it}", "${EMPTY:?set it}", "${UNSET?x}",
                                  "${unclosed", "${1BAD}"])
def test_interpolation_errors(text: str) -> None:
    with pytest.raises(InterpolationError):
        interpolate(text, ENV, lambda _n: None)


def test_required_variable_message_names_it() -> None:
    with pytest.raises(InterpolationError, match="PGPASS is missing: set it in .env"):
        interpolate("${PGPASS:?set it in .env}", {}, lambda _n: None)


def test_env_file_syntax() -> None:
    text = "\n".join([
        "# comment",
        "",
        "A=1",
        "export B = two ",
        "C='single $A # kept'",
        'D="double $A\\nline"',
        "E=unquoted # comment",
        "F=${A}-${UNDEFINED:-def}",
        "G=",
        "BARE",
    ])
    assert parse_env_file(text) == {
        "A": "1", "B": "two", "C": "single $A # kept", "D": "double 1\nline",
        "E": "unquoted", "F": "1-def", "G": "",
    }


@pytest.mark.parametrize("text", ["1A=x", "A='open", 'A="open'])
def test_env_file_errors(text: str) -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse_env_file(text)


def test_merge_follows_compose_override_rules() -> None:
    base = {"services": {"web": {
        "image": "a:1", "command": ["x", "y"], "ports": ["80:80"],
        "environment": ["A=1", "B=2"], "volumes": ["data:/data", "/srv/c:/conf:ro"],
    }}, "volumes": {"data": {}}}
    over = {"services": {"web": {
        "image": "a:2", "command": "z", "ports": ["443:443"],
        "environment": {"B": "3"}, "volumes": ["other:/data"],
    }, "new": {"image": "n"}}, "volumes": {"other": {}}}
    merged = merge_documents([base, over])
    web = merged["services"]["web"]
    assert web["image"] == "a:2"
    assert web["command"] == "z"  # replaced, not merged
    assert web["ports"] == ["80:80", "443:443"]  # concatenated
    assert web["environment"] == {"A": "1", "B": "3"}  # merged by key
    assert web["volumes"] == ["/srv/c:/conf:ro", "other:/data"]  # merged by target
    assert set(merged["services"]) == {"web", "new"}
    assert set(merged["volumes"]) == {"data", "other"}


def test_fixture_loads_like_compose(tmp_path: Path) -> None:
    loaded = load_offline([COMPOSE_FILE], [ENV_FILE])
    assert loaded.name == "idp-cms"  # COMPOSE_PROJECT_NAME from the env file
    pg = loaded.raw["services"]["postgres"]
    assert pg["environment"]["POSTGRES_DB"] == "idp_cms"
    assert pg["environment"]["POSTGRES_PASSWORD"] == "pg-Fixture-Secret-7f3a"
    assert pg["env_file"] == [str(ENV_FILE)]
    assert loaded.unset == ()
    # `$$` reaches the container as `$`: the shell inside expands it, compose does not
    cmd = loaded.raw["services"]["redis"]["command"]
    assert "'requirepass '$REDIS_PASSWORD" in cmd
    assert "Fixture-Secret" not in cmd


def test_project_name_precedence(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("name: from-file\nservices: {a: {image: x}}\n")
    assert load_offline([tmp_path / "compose.yaml"]).name == "from-file"
    assert load_offline([tmp_path / "compose.yaml"], project="given").name == "given"
    (tmp_path / "compose.yaml").write_text("services: {a: {image: x}}\n")
    assert load_offline([tmp_path / "compose.yaml"]).name == tmp_path.name


def test_dot_env_is_read_by_default_and_unset_variables_reported(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  a:\n    image: x:${TAG}\n    environment: [\"P=${NOPE}\"]\n")
    (tmp_path / ".env").write_text("TAG=7\n")
    loaded = load_offline(default_compose_files(tmp_path))
    assert loaded.raw["services"]["a"]["image"] == "x:7"
    assert loaded.unset == ("NOPE",)


def test_default_files_with_override(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    assert default_compose_files(tmp_path) == [tmp_path / "docker-compose.yml"]
    (tmp_path / "docker-compose.override.yml").write_text("services: {}\n")
    assert default_compose_files(tmp_path)[1].name == "docker-compose.override.yml"
    assert default_compose_files(tmp_path / "none") == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("include: [other.yml]\nservices: {}\n", "`include` is not read offline"),
        ("services:\n  a:\n    extends: {service: b}\n", "services.a.extends"),
        ("services:\n  a:\n    image: ${X:?X must be set}\n", "X must be set"),
        ("- a list\n", "a compose file is a mapping"),
        ("services: [\n", "invalid YAML"),
    ],
)
def test_refused_files(tmp_path: Path, content: str, problem: str) -> None:
    (tmp_path / "compose.yaml").write_text(content)
    with pytest.raises(UsageError, match=problem):
        load_offline([tmp_path / "compose.yaml"])


def test_missing_optional_env_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  a:\n    image: x\n    env_file:\n      - path: missing.env\n"
        "        required: false\n")
    loaded = load_offline([tmp_path / "compose.yaml"])
    assert loaded.raw["services"]["a"]["environment"] == {}


def test_no_files() -> None:
    with pytest.raises(UsageError, match="no compose file"):
        load_offline([])
