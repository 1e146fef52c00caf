"""Exact command transcripts over the shared RecordingTransport, with the inventory's redact."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from hapair.exec.audit import AUDIT_LOG
from hapair.exec.journal import Result
from hapair.exec.recording import RecordingTransport, Reply
from hapair.exec.runner import StepRunFailed, execute
from hapair.inventory.secrets import Secret, SecretRef, redact
from hapair.plan.step import CommandCheck, Plan, Run, Step, StepKind


def start_step(**over: object) -> Step:
    fields: dict[str, object] = dict(
        id="upgrade/node1/postgres.start", host="node1", kind=StepKind.NEW_SERVICE,
        reason="PostgreSQL must run", client_impact="none",
        action=Run(["supervisorctl", "start", "postgres"]), verify=CommandCheck(["pg_isready"]),
        settle_timeout=30.0, poll_interval=0.01)
    return Step(**{**fields, **over})  # type: ignore[arg-type]


def test_verify_run_poll_audit_transcript(tmp_path: Path) -> None:
    t = RecordingTransport("node1")
    t.on(["pg_isready"], Reply(2), Reply(2), Reply(0))  # down, still starting, up

    report = execute(Plan("upgrade", (start_step(),)), {"node1": t}, runs_root=tmp_path,
                     command="hapair upgrade")

    assert report.outcomes[0].result is Result.OK
    assert t.commands == [
        ("pg_isready",),  # verify first: not true yet
        ("supervisorctl", "start", "postgres"),
        ("pg_isready",), ("pg_isready",),  # verify again, polling until it converges
        ("mkdir", "-p", "--", "/var/log/hapair"),
        ("tee", "-a", "--", AUDIT_LOG),  # fixed argv; the line travels on stdin
    ]
    line = (t.calls[-1].input or b"").decode()
    assert f"run={report.run_id}\tstep=upgrade/node1/postgres.start\tresult=ok\t" in line


def test_the_inventory_redact_keeps_a_secret_out_of_everything_written(tmp_path: Path) -> None:
    secret = Secret("correct horse battery", SecretRef("file", "secrets/replicator"))
    t = RecordingTransport("node1")
    t.on(["pg_isready"], Reply(1))
    t.on(["psql", "-X"], Reply(3, stderr=f"ERROR at PASSWORD '{secret.reveal()}'"))
    step = start_step(kind=StepKind.SQL, action=Run(
        ["psql", "-X"], stdin=lambda: f"ALTER ROLE r PASSWORD '{secret.reveal()}'",
        stdin_label="ALTER ROLE (password on stdin)"))

    with pytest.raises(StepRunFailed) as err:
        execute(Plan("upgrade", (step,)), {"node1": t}, runs_root=tmp_path, command="x",
                redact=partial(redact, secrets=[secret]))

    written = (tmp_path / "upgrade" / "latest" / "journal.jsonl").read_text()
    audit = b"".join(c.input or b"" for c in t.calls if c.argv[:1] == ("tee",)).decode()
    for text in (written, audit, str(err.value)):
        assert secret.reveal() not in text
    assert "PASSWORD '***'" in str(err.value)
