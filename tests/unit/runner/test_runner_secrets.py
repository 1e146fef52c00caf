"""No secret in the plan, the journal, the audit log or the error message — even when a host
echoes it back in an error (psql prints the failing statement, password included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runner_fakes import hosts

from hapair.exec.audit import AUDIT_LOG
from hapair.exec.runner import StepRunFailed, execute
from hapair.plan.step import CommandCheck, FileHas, Plan, Run, Step, StepKind, WriteFile

SECRET = "s3cr3t-Pa55-w0rd"


def redact(text: str) -> str:
    return text.replace(SECRET, "«redacted»")


def secret_plan() -> Plan:
    set_password = Step(
        id="upgrade/node1/postgres.replicator", host="node1", kind=StepKind.SQL,
        reason="a REPLICATION role for the standby", client_impact="none",
        action=Run(["psql", "-X", "-v", "ON_ERROR_STOP=1"], stdin_label="the role's SQL",
                   stdin=lambda: f"ALTER ROLE replicator PASSWORD '{SECRET}';"),
        verify=CommandCheck(["check-role"]))
    write_pass = Step(
        id="upgrade/node1/pgpass", host="node1", kind=StepKind.FILE,
        reason="the standby's password file", action=WriteFile("/root/.pgpass", SECRET),
        verify=FileHas("/root/.pgpass", SECRET))
    return Plan("upgrade", (write_pass, set_password))


def test_rows_describe_secret_steps_without_the_secret() -> None:
    rows = secret_plan().rows()
    assert SECRET not in json.dumps(rows)
    assert rows[0]["action"] == "write /root/.pgpass (mode 0600)"
    assert rows[1]["action"] == "psql -X -v ON_ERROR_STOP=1 < the role's SQL"


def test_a_secret_echoed_by_a_failing_command_never_reaches_disk_or_the_message(
    tmp_path: Path,
) -> None:
    hs = hosts("node1")
    hs["node1"].handlers[("check-role",)] = lambda *_: (1, "", "")
    hs["node1"].handlers[("psql", "-X", "-v", "ON_ERROR_STOP=1")] = lambda _a, data: (
        1, "", f"ERROR:  syntax error\nLINE 1: {data.decode() if data else ''}")

    with pytest.raises(StepRunFailed) as err:
        execute(secret_plan(), hs, runs_root=tmp_path, command="hapair upgrade", redact=redact)

    psql = [c for c in hs["node1"].calls if c.argv[0] == "psql"][0]
    assert SECRET.encode() in (psql.input or b"")  # delivered, on stdin only
    assert all(SECRET not in " ".join(c.argv) for c in hs["node1"].calls)
    assert SECRET not in str(err.value) and "«redacted»" in str(err.value)
    journal = (tmp_path / "upgrade" / "latest" / "journal.jsonl").read_text()
    assert SECRET not in journal and "«redacted»" in journal  # the echo was kept, scrubbed
    assert SECRET not in hs["node1"].files[AUDIT_LOG].decode()
    assert hs["node1"].modes["/root/.pgpass"] == 0o600


def test_a_secret_slipped_into_a_reason_is_redacted_everywhere(tmp_path: Path) -> None:
    hs = hosts("node1")
    leaky = Step(id="upgrade/node1/leaky", host="node1", kind=StepKind.FILE,
                 reason=f"uses {SECRET} by mistake", action=WriteFile("/etc/x", "x"),
                 verify=FileHas("/etc/x", "x"))
    plan = Plan("upgrade", (leaky,))

    assert SECRET not in json.dumps(plan.as_dict(redact))
    report = execute(plan, hs, runs_root=tmp_path, command="hapair upgrade", redact=redact)
    dry = execute(plan, hs, runs_root=tmp_path, command="x", redact=redact, dry_run=True)

    assert SECRET not in json.dumps(report.as_dict()) + json.dumps(dry.as_dict())
    assert SECRET not in (tmp_path / "upgrade" / "latest" / "journal.jsonl").read_text()
