"""SupervisorRuntime over a RecordingTransport: the exact commands, and how replies are read."""

from __future__ import annotations

import pytest

from hapair.errors import CommandFailed, UsageError
from hapair.exec.recording import Call, RecordingTransport, Reply, StoredFile
from hapair.exec.runtime import ServiceSpec, ServiceState, ServiceStatus
from hapair.exec.supervisor import SupervisorRuntime, render_program

CONF = "/etc/supervisor/supervisord.conf"
CTL = ("supervisorctl", "-c", CONF)
PATH = "/etc/supervisor/conf.d/web.conf"
ERR_LOG = "/var/log/supervisor/web.err.log"
SPEC = ServiceSpec(name="web", command=("python3", "-m", "http.server", "8000"))


@pytest.fixture
def host() -> RecordingTransport:
    return RecordingTransport("node1")


@pytest.fixture
def rt(host: RecordingTransport) -> SupervisorRuntime:
    return SupervisorRuntime(host)


def test_define_writes_0600_file_then_rereads_and_updates(
    host: RecordingTransport, rt: SupervisorRuntime
) -> None:
    host.on([*CTL, "update", "web"], stdout="web: added process group\n")
    rt.define(SPEC)
    assert host.calls == [
        Call("read_file", path=PATH),
        Call("write_file", path=PATH, data=render_program(SPEC).encode(), mode=0o600),
        Call("run", (*CTL, "reread"), timeout=150.0),
        Call("run", (*CTL, "update", "web"), timeout=150.0),
    ]


def test_define_puts_the_previous_file_back_when_supervisord_rejects_the_new_one(
    host: RecordingTransport, rt: SupervisorRuntime
) -> None:
    host.files[PATH] = StoredFile(b"old\n")
    host.on([*CTL, "reread"], returncode=1, stdout="ERROR: CANT_REREAD: Invalid user name x\n")
    with pytest.raises(CommandFailed, match="reread"):
        rt.define(SPEC)
    assert host.text(PATH) == "old\n"
    assert host.files[PATH].mode == 0o600
    assert ("update", "web") not in [c[3:] for c in host.commands]


def test_define_removes_a_new_file_that_supervisord_rejects(
    host: RecordingTransport, rt: SupervisorRuntime
) -> None:
    host.on([*CTL, "reread"], returncode=1, stdout="ERROR: CANT_REREAD: bad\n")
    with pytest.raises(CommandFailed):
        rt.define(SPEC)
    assert host.commands[-1] == ("rm", "-f", PATH)


def test_define_fails_when_update_reports_an_error(
    host: RecordingTransport, rt: SupervisorRuntime
) -> None:
    host.on([*CTL, "update", "web"], returncode=1, stdout="ERROR: no such group: web\n")
    with pytest.raises(CommandFailed, match="no such group"):
        rt.define(SPEC)


def test_remove_stops_deletes_rereads_and_updates(
    host: RecordingTransport, rt: SupervisorRuntime
) -> None:
    host.on([*CTL, "stop", "web"], stdout="web: stopped\n")
    host.on([*CTL, "update", "web"], stdout="web: removed process group\n")
    rt.remove("web")
    assert host.commands == [
        (*CTL, "stop", "web"),
        ("rm", "-f", PATH),
        (*CTL, "reread"),
        (*CTL, "update", "web"),
    ]


def test_remove_of_an_absent_service_succeeds(
    host: RecordingTransport, rt: SupervisorRuntime
) -> None:
    host.on([*CTL, "stop", "web"], returncode=1, stdout="web: ERROR (no such process)\n")
    host.on([*CTL, "update", "web"], returncode=1, stdout="ERROR: no such group: web\n")
    rt.remove("web")
    assert len(host.commands) == 4


@pytest.mark.parametrize(
    ("verb", "reply"),
    [
        ("start", Reply(0, "web: started\n")),
        ("stop", Reply(0, "web: stopped\n")),
        ("stop", Reply(0, "web: ERROR (not running)\n")),
        ("restart", Reply(0, "web: stopped\nweb: started\n")),
        ("restart", Reply(0, "web: ERROR (not running)\nweb: started\n")),
    ],
)
def test_actions_that_succeed(
    host: RecordingTransport, rt: SupervisorRuntime, verb: str, reply: Reply
) -> None:
    host.on([*CTL, verb, "web"], reply)
    getattr(rt, verb)("web")
    assert host.commands == [(*CTL, verb, "web")]


def test_start_of_a_running_program_checks_it_is_not_failing(
    host: RecordingTransport, rt: SupervisorRuntime
) -> None:
    host.on([*CTL, "start", "web"], stdout="web: ERROR (already started)\n")
    host.on([*CTL, "status", "web"], stdout=f"{'web':<32} RUNNING   pid 5, uptime 0:01:00\n")
    rt.start("web")
    assert host.commands == [(*CTL, "start", "web"), (*CTL, "status", "web")]


def test_start_of_a_program_in_backoff_fails(
    host: RecordingTransport, rt: SupervisorRuntime
) -> None:
    backoff = "BACKOFF Exited too quickly (process log may have details)"
    host.on([*CTL, "start", "web"], stdout="web: ERROR (already started)\n")
    host.on([*CTL, "status", "web"], stdout=f"{'web':<32} {backoff}\n")
    host.on(["tail", "-n", "20", ERR_LOG], stdout="ImportError: no module named cms\n")
    with pytest.raises(CommandFailed) as err:
        rt.start("web")
    assert str(err.value).endswith(f"ImportError: no module named cms | web: {backoff}")


@pytest.mark.parametrize(
    ("verb", "reply", "shown"),
    [
        ("start", Reply(7, "web: ERROR (spawn error)\n"), "web: ERROR (spawn error)"),
        ("start", Reply(1, "web: ERROR (no such process)\n"), "no such process"),
        ("stop", Reply(1, "web: ERROR (no such process)\n"), "no such process"),
        ("restart", Reply(7, "web: ERROR (not running)\nweb: ERROR (spawn error)\n"),
         "spawn error"),
        ("start", Reply(4, "unix:///run/supervisor.sock no such file\n"), "no such file"),
    ],
)
def test_actions_that_fail_carry_the_program_stderr_tail(
    host: RecordingTransport, rt: SupervisorRuntime, verb: str, reply: Reply, shown: str
) -> None:
    host.on([*CTL, verb, "web"], reply)
    host.on(["tail", "-n", "20", ERR_LOG], stdout="Traceback …\nOSError: port 8000 in use\n")
    with pytest.raises(CommandFailed) as err:
        getattr(rt, verb)("web")
    assert err.value.host == "node1"
    assert err.value.argv == (*CTL, verb, "web")
    assert "OSError: port 8000 in use" in str(err.value)
    assert shown in str(err.value)
    assert host.commands[-1] == ("tail", "-n", "20", ERR_LOG)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            Reply(0, "web                              RUNNING   pid 41, uptime 0:00:09\n"),
            ServiceStatus("web", ServiceState.RUNNING, 41, "RUNNING pid 41, uptime 0:00:09"),
        ),
        # supervisorctl exits 3 for a program that is not running: an answer, not a failure.
        (
            Reply(3, "web                              STOPPED   Not started\n"),
            ServiceStatus("web", ServiceState.STOPPED, None, "STOPPED Not started"),
        ),
        (
            Reply(3, "web                              FATAL     Exited too quickly (process log may have details)\n"),  # noqa: E501
            ServiceStatus(
                "web",
                ServiceState.FAILED,
                None,
                "FATAL Exited too quickly (process log may have details)",
            ),
        ),
        (
            Reply(4, "web: ERROR (no such process)\n"),
            ServiceStatus("web", ServiceState.ABSENT, None, "no such process"),
        ),
    ],
)
def test_status(
    host: RecordingTransport, rt: SupervisorRuntime, reply: Reply, expected: ServiceStatus
) -> None:
    host.on([*CTL, "status", "web"], reply)
    assert rt.status("web") == expected
    assert host.commands == [(*CTL, "status", "web")]


def test_status_when_supervisord_is_down_is_a_failure(
    host: RecordingTransport, rt: SupervisorRuntime
) -> None:
    down = "unix:///run/supervisor.sock no such file\n"
    host.on([*CTL, "status", "web"], returncode=4, stdout=down)
    with pytest.raises(CommandFailed, match="no such file"):
        rt.status("web")


def test_status_all(host: RecordingTransport, rt: SupervisorRuntime) -> None:
    host.on(
        [*CTL, "status"],
        returncode=3,
        stdout=(
            "bad                              BACKOFF   Exited too quickly (process log may have details)\n"  # noqa: E501
            "web                              RUNNING   pid 8950, uptime 0:00:04\n"
        ),
    )
    assert [(s.name, s.state, s.pid) for s in rt.status_all()] == [
        ("bad", ServiceState.FAILED, None),
        ("web", ServiceState.RUNNING, 8950),
    ]
    host.on([*CTL, "status"], stdout="")
    assert rt.status_all() == []


def test_logs_tails_both_logs(host: RecordingTransport, rt: SupervisorRuntime) -> None:
    host.on_prefix(["tail"], returncode=1, stdout="==> /var/log/supervisor/web.out.log <==\nhi\n")
    assert rt.logs("web", lines=5) == "==> /var/log/supervisor/web.out.log <==\nhi\n"
    assert host.commands == [
        ("tail", "-n", "5", "/var/log/supervisor/web.out.log", ERR_LOG),
    ]


def test_custom_paths_are_used_everywhere() -> None:
    host = RecordingTransport("lab1")
    rt = SupervisorRuntime(host, "/tmp/s/sup.conf", "/tmp/s/conf.d", log_dir="/tmp/s/log")
    rt.define(SPEC)
    assert host.calls[1].path == "/tmp/s/conf.d/web.conf"
    assert b"stderr_logfile=/tmp/s/log/web.err.log\n" in (host.calls[1].data or b"")
    assert host.commands[0] == ("supervisorctl", "-c", "/tmp/s/sup.conf", "reread")


@pytest.mark.parametrize("name", ["../etc/passwd", "a b", "-rf", ""])
def test_bad_names_never_reach_the_host(
    host: RecordingTransport, rt: SupervisorRuntime, name: str
) -> None:
    for call in (rt.start, rt.stop, rt.restart, rt.remove, rt.status, rt.logs):
        with pytest.raises(UsageError):
            call(name)
    assert host.calls == []
