"""The Step data model: validation, descriptions, plan rendering, digest, checks."""

from __future__ import annotations

from typing import Any

import pytest
from runner_fakes import FakeHost, file_step

from hapair.errors import UsageError
from hapair.exec.transport import CommandResult
from hapair.plan.step import (
    Check,
    CommandCheck,
    FileExists,
    FileHas,
    Fn,
    FnCheck,
    Plan,
    Run,
    Step,
    StepContext,
    StepKind,
    Undo,
    WriteFile,
)

OK_VERIFY = FnCheck("always", lambda _c: Check(True, "yes"))
ACTION = Run(["true"])


def make(**over: Any) -> Step:
    fields: dict[str, Any] = dict(id="upgrade/node1/x", host="node1", kind=StepKind.COMMAND,
                                  reason="why", action=ACTION, verify=OK_VERIFY)
    return Step(**{**fields, **over})


@pytest.mark.parametrize(
    ("over", "problem"),
    [
        ({"id": "upgrade node1"}, "id must be path-like"),
        ({"id": "/upgrade/x"}, "id must be path-like"),
        ({"reason": ""}, "reason must be one non-empty line"),
        ({"reason": "two\nlines"}, "reason must be one non-empty line"),
        ({"client_impact": "a\nb"}, "client_impact must be one non-empty line"),
        ({"kind": StepKind.PROBE}, "a PROBE step has no action"),
        ({"action": None}, "every other kind needs one"),
        ({"kind": StepKind.PROBE, "action": None, "undo": Undo(ACTION)}, "has no undo"),
        ({"settle_timeout": -1}, "settle_timeout must be >= 0"),
        ({"poll_interval": 0}, "poll_interval > 0"),
    ],
)
def test_invalid_steps_are_rejected_with_the_problem(over: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        make(**over)


@pytest.mark.parametrize(
    ("obj", "described"),
    [
        (Run(["pg_ctl", "reload", "-D", "/var/lib/pg data"]),
         "pg_ctl reload -D '/var/lib/pg data'"),
        (Run(["psql"], stdin="SECRET", stdin_label="the SQL", user="postgres"),
         "psql (as postgres) < the SQL"),
        (Run(["true"], host="node2"), "node2: true"),
        (WriteFile("/etc/x.conf", "SECRET", mode=0o640, owner="postgres"),
         "write /etc/x.conf (mode 0640, owner postgres)"),
        (WriteFile("/etc/y", lambda: "SECRET"), "write /etc/y (mode 0600)"),
        (Fn("promote node2", lambda _c: None), "promote node2"),
        (CommandCheck(["pg_isready"]), "pg_isready"),
        (CommandCheck(["x"], description="PG accepts connections"), "PG accepts connections"),
        (FileExists("/b", host="node1"), "node1: /b exists"),
        (FileHas("/etc/x", "SECRET"), "/etc/x has the planned content"),
    ],
)
def test_descriptions(obj: Any, described: str) -> None:
    assert obj.describe() == described
    assert "SECRET" not in repr(obj)  # payloads (maybe secrets) never reach a traceback


def test_plan_rows_group_by_host_and_digest_is_stable() -> None:
    plan = Plan("upgrade", (file_step("a"), file_step("b", "node2"), file_step("c")))
    assert plan.hosts() == ["node1", "node2"]
    assert {h: [s.id for s in ss] for h, ss in plan.by_host().items()} == {
        "node1": ["upgrade/node1/a", "upgrade/node1/c"], "node2": ["upgrade/node2/b"]}
    row = plan.rows()[1]
    assert row == {
        "id": "upgrade/node2/b", "host": "node2", "kind": "file",
        "kind_meaning": "file written; nothing reloaded", "reason": "b must be configured",
        "client_impact": "none", "action": "write /etc/hapair/b (mode 0644)",
        "verify": "/etc/hapair/b has the planned content", "undo": "rm -f -- /etc/hapair/b",
        "undo_needs": [],
    }
    same = Plan("upgrade", (file_step("a"), file_step("b", "node2"), file_step("c")))
    changed = Plan("upgrade", (file_step("a"), file_step("b", "node2", content="x")))
    assert plan.digest() == same.digest() != changed.digest()
    assert plan.as_dict()["hosts"] == {"node1": ["upgrade/node1/a", "upgrade/node1/c"],
                                       "node2": ["upgrade/node2/b"]}


def test_duplicate_step_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate step ids: upgrade/node1/a"):
        Plan("upgrade", (file_step("a"), file_step("a")))


def test_every_kind_says_what_it_means_in_plan() -> None:
    assert all(k.meaning for k in StepKind)


@pytest.mark.parametrize(
    ("files", "check", "ok", "reason"),
    [
        ({"/x": b"v"}, FileHas("/x", "v"), True, "n1: /x has the planned content"),
        ({"/x": b"w"}, FileHas("/x", "v"), False, "n1: /x differs from the plan"),
        ({}, FileHas("/x", "v"), False, "n1: /x is missing"),
        ({"/x": b""}, FileExists("/x"), True, "n1: /x exists"),
        ({}, FileExists("/x"), False, "n1: /x is missing"),
    ],
)
def test_file_checks(files: dict[str, bytes], check: Any, ok: bool, reason: str) -> None:
    assert check.check(StepContext("n1", {"n1": FakeHost("n1", files=files)})) == Check(ok, reason)


def test_command_check_with_a_parser_and_a_one_line_reason() -> None:
    host = FakeHost("n1")
    host.handlers[("redis-cli", "role")] = lambda *_: (0, "master\n0\n", "")

    def is_master(res: CommandResult) -> Check:
        role = res.stdout.split()[0]
        return Check(role == "master", f"redis role is\n{role}")

    check = CommandCheck(["redis-cli", "role"], accept=is_master)
    chk = check.check(StepContext("n1", {"n1": host}))
    assert chk == Check(True, "redis role is master")


def test_a_context_without_the_host_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no transport for host 'node9'"):
        StepContext("node9", {}).transport  # noqa: B018
