"""render_program: exact text, and argv/env round-trips through supervisord's parsing rules."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest

from hapair.errors import UsageError
from hapair.exec.runtime import ServiceSpec
from hapair.exec.supervisor import render_program

DATA = Path(__file__).parent / "data"


def supervisord_reads(text: str) -> tuple[list[str], dict[str, str]]:
    """What supervisord 4 makes of a program file: its ini parser (inline comments on ';' and
    '#' after a blank), its textual "%(here)s" replacement, then its %-expansion, posix shlex
    for the command, and its non-posix KEY="v",… parser for the environment
    (supervisor.datatypes.dict_of_key_value_pairs)."""
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"))
    parser.read_string(text)
    section = {k: v.replace("%(here)s", "/HERE") for k, v in parser[parser.sections()[0]].items()}
    argv = shlex.split(section["command"] % {})
    env: dict[str, str] = {}
    if "environment" in section:
        lexer = shlex.shlex(section["environment"] % {})
        lexer.wordchars += "/.+-():"
        tokens = list(lexer)
        for i in range(0, len(tokens), 4):
            key, eq, value = tokens[i : i + 3]
            assert eq == "="
            env[key] = value.strip("'\"")
    return argv, env


def test_full_spec_renders_exactly() -> None:
    spec = ServiceSpec(
        name="web",
        command=("/usr/bin/python3", "-m", "http.server", "8000", "--bind", "127.0.0.1"),
        user="www-data",
        directory="/srv/www",
        environment={
            "GREETING": "hello, world",
            "DJANGO_SETTINGS_MODULE": "cms.settings",
            "RATIO": "50%",
        },
        autostart=False,
        stop_signal="SIGINT",
        stop_wait_secs=90,
        priority=100,
    )
    assert render_program(spec) == (DATA / "program_web.conf").read_text()


def test_defaults_and_log_dir_render_exactly() -> None:
    spec = ServiceSpec(name="redis", command=("redis-server", "/etc/redis/redis.conf"))
    assert render_program(spec, log_dir="/srv/logs") == (DATA / "program_minimal.conf").read_text()


@pytest.mark.parametrize(
    "argv",
    [
        ["/usr/bin/python3", "-c", "import sys; print(sys.argv)"],
        ["sh", "-c", "echo a ;echo b # not a comment"],
        ["printf", "%s %d%%\\n", "100%", "%(here)s", "%%(here)s", "x%(ENV_HOME)s"],
        ["echo", "", "it's", 'say "hi"', "back\\slash", "$HOME", "`id`"],
        ["echo", "trailing blank ", "\ttab", " ;lead", "#hash", "a #b", "x\u00a0;y"],
        ["echo", "caf\u00e9", "semi;colon", "(paren)", "star*", "{brace}"],
    ],
)
def test_command_round_trips_through_supervisord_parsing(argv: list[str]) -> None:
    text = render_program(ServiceSpec(name="p", command=tuple(argv)))
    assert supervisord_reads(text)[0] == argv


@pytest.mark.parametrize(
    "env",
    [
        {"A": "plain", "B": "with space", "C": "comma,inside", "D": ""},
        {"PCT": "100%", "EXP": "%(ENV_HOME)s", "SEMI": "a;b", "HASH": "a#b"},
        {"SQ": "it's", "DQ": 'say "hi" now', "EQ": "k=v", "BS": "C:\\path\\"},
    ],
)
def test_environment_round_trips_through_supervisord_parsing(env: dict[str, str]) -> None:
    text = render_program(ServiceSpec(name="p", command=("true",), environment=env))
    assert supervisord_reads(text)[1] == env


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "bad/name"}, "invalid service name"),
        ({"name": "grp:proc"}, "invalid service name"),
        ({"name": ""}, "invalid service name"),
        ({"command": ()}, "empty command"),
        ({"command": ("echo", "two\nlines")}, "newline"),
        ({"environment": {"1BAD": "x"}}, "invalid environment variable name"),
        ({"environment": {"A": "x ;y"}}, "a blank followed by ';' or '#'"),
        ({"environment": {"A": "x #y"}}, "a blank followed by ';' or '#'"),
        ({"environment": {"A": "it's \"both\""}}, "both kinds of quote"),
        ({"environment": {"A": '"quoted"'}}, "a quote at its start or end"),
        ({"environment": {"A": "line\nbreak"}}, "newline"),
        ({"directory": "/srv/a ;b"}, "cannot be written"),
        ({"directory": " /srv"}, "cannot be written"),
        ({"directory": "%(here)s/x"}, "cannot be written"),
        ({"environment": {"A": "%(here)s"}}, "cannot express a value with '%\\(here\\)s'"),
        ({"user": ""}, "cannot be written"),
        ({"stop_signal": "NOPE"}, "unknown stop signal"),
    ],
)
def test_unrepresentable_specs_are_refused(change: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"name": "p", "command": ("true",), **change}
    with pytest.raises(UsageError, match=message):
        render_program(ServiceSpec(**fields))  # type: ignore[arg-type]
