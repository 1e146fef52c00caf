"""parse_status and action_errors: table-driven over real-looking supervisorctl output."""

from __future__ import annotations

from pathlib import Path

import pytest

from hapair.exec.runtime import ServiceState, ServiceStatus
from hapair.exec.supervisor import action_errors, parse_status

DATA = Path(__file__).parent / "data"


def _status_cases() -> list[tuple[str, ServiceStatus]]:
    cases = []
    for row in (DATA / "supervisorctl_status.tsv").read_text().splitlines():
        if row.startswith("#"):
            continue
        line, name, state, pid, detail = row.split("\t")
        expected = ServiceStatus(
            name, ServiceState(state), None if pid == "-" else int(pid), detail
        )
        cases.append((line, expected))
    return cases


@pytest.mark.parametrize(("line", "expected"), _status_cases())
def test_status_line(line: str, expected: ServiceStatus) -> None:
    assert parse_status(line) == [expected]


def test_status_of_several_programs_keeps_their_order_and_skips_blank_lines() -> None:
    out = (
        f"{'bad':<32} {'FATAL':<9} Exited too quickly (process log may have details)\n"
        "\n"
        "web                              RUNNING   pid 8950, uptime 0:00:04\n"
    )
    assert [(s.name, s.state, s.pid) for s in parse_status(out)] == [
        ("bad", ServiceState.FAILED, None),
        ("web", ServiceState.RUNNING, 8950),
    ]


def test_no_programs_is_an_empty_list() -> None:
    assert parse_status("") == []


@pytest.mark.parametrize(
    "line",
    [
        "unix:///var/run/supervisor.sock no such file",
        "unix:///var/run/supervisor.sock refused connection",
        "error: <class 'ConnectionRefusedError'>, [Errno 111] Connection refused: file: x line: 1",
        "web: ERROR (spawn error)",
        "web                              SLEEPING  pid 1",
        "Shut down",
    ],
)
def test_unknown_status_lines_are_refused(line: str) -> None:
    with pytest.raises(ValueError, match="unexpected supervisorctl status line"):
        parse_status(line)


@pytest.mark.parametrize(
    ("output", "tolerated", "errors"),
    [
        ("web: started\n", (), []),
        ("web: stopped\nweb: started\n", (), []),
        ("web: ERROR (already started)\n", ("already started",), []),
        ("web: ERROR (already started)\n", (), ["web: ERROR (already started)"]),
        ("web: ERROR (spawn error)\n", ("already started",), ["web: ERROR (spawn error)"]),
        ("web: ERROR (not running)\nweb: ERROR (spawn error)\n", ("not running",),
         ["web: ERROR (spawn error)"]),
        ("web: ERROR (no such file)\n", (), ["web: ERROR (no such file)"]),
        ("web: ERROR (abnormal termination)\n", (), ["web: ERROR (abnormal termination)"]),
        ("ERROR: no such group: web\n", ("no such group",), []),
        ("ERROR: no such group: web\n", (), ["ERROR: no such group: web"]),
        ("ERROR: CANT_REREAD: No closing quotation in section 'program:web'\n", (),
         ["ERROR: CANT_REREAD: No closing quotation in section 'program:web'"]),
        ("web: stopped\nweb: updated process group\n", (), []),
        ("", (), []),
        ("unix:///run/supervisor.sock no such file\n", ("not running",),
         ["unix:///run/supervisor.sock no such file"]),
    ],
)
def test_action_errors(output: str, tolerated: tuple[str, ...], errors: list[str]) -> None:
    assert action_errors(output, tolerated) == errors
