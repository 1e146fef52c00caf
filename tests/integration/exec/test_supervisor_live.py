"""SupervisorRuntime over LocalTransport against a real supervisord in a temp dir (conftest)."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from exec_live_helpers import Supervisord, pid_alive, require_free, wait_for

from hapair.errors import CommandFailed, UsageError
from hapair.exec.local import LocalTransport
from hapair.exec.runtime import ServiceSpec, ServiceState
from hapair.exec.supervisor import SupervisorRuntime

HTTP_PORT = 18110
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


@pytest.fixture
def rt(supervisord: Supervisord) -> Iterator[SupervisorRuntime]:
    runtime = SupervisorRuntime(
        LocalTransport(),
        supervisord.config,
        supervisord.include_dir,
        log_dir=supervisord.log_dir,
        timeout=60,
    )
    yield runtime
    for st in runtime.status_all():  # leave supervisord empty for the next test
        runtime.remove(st.name)


def _http_get(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
            return int(resp.status)
    except OSError:
        return None


def test_http_server_lifecycle(rt: SupervisorRuntime, supervisord: Supervisord) -> None:
    require_free(HTTP_PORT)
    www = supervisord.dir / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from hapair\n")
    spec = ServiceSpec(
        name="web",
        command=(PYTHON, "-m", "http.server", str(HTTP_PORT), "--bind", "127.0.0.1"),
        directory=str(www),
        environment={"PYTHONUNBUFFERED": "1"},
        autostart=False,
        stop_wait_secs=10,
    )
    rt.define(spec)
    conf = Path(rt.conf_path("web"))
    assert conf.stat().st_mode & 0o777 == 0o600
    st = rt.status("web")
    assert (st.state, st.pid) == (ServiceState.STOPPED, None)

    rt.start("web")
    st = rt.status("web")
    assert st.state == ServiceState.RUNNING and st.pid is not None
    assert "http.server" in Path(f"/proc/{st.pid}/cmdline").read_text()
    assert wait_for(lambda: _http_get(HTTP_PORT), "the HTTP server to answer") == 200
    rt.start("web")  # already running: fine

    rt.restart("web")
    new = rt.status("web")
    assert new.state == ServiceState.RUNNING and new.pid is not None and new.pid != st.pid

    rt.stop("web")
    assert rt.status("web").state == ServiceState.STOPPED
    assert not pid_alive(new.pid or 0)
    assert _http_get(HTTP_PORT) is None
    rt.stop("web")  # already stopped: fine
    assert '"GET / HTTP/1.1" 200' in rt.logs("web", lines=50)

    rt.remove("web")
    assert rt.status("web").state == ServiceState.ABSENT
    assert not conf.exists()
    rt.remove("web")  # already absent: fine


def test_define_with_autostart_starts_it(rt: SupervisorRuntime) -> None:
    rt.define(ServiceSpec(name="sleeper", command=("sleep", "300"), stop_wait_secs=5))
    st = wait_for(
        lambda: (s := rt.status("sleeper")).state == ServiceState.RUNNING and s,
        "the autostarted program to run",
    )
    assert st.pid and pid_alive(st.pid)
    assert [s.name for s in rt.status_all()] == ["sleeper"]
    # Unchanged definition: supervisord leaves the running process alone.
    rt.define(ServiceSpec(name="sleeper", command=("sleep", "300"), stop_wait_secs=5))
    assert rt.status("sleeper").pid == st.pid


def test_a_program_that_fails_to_start(rt: SupervisorRuntime) -> None:
    code = "import sys; sys.stderr.write('boom: no config file\\n'); sys.exit(3)"
    rt.define(ServiceSpec(name="broken", command=(PYTHON, "-c", code), autostart=False))
    with pytest.raises(CommandFailed) as err:
        rt.start("broken")
    assert "boom: no config file" in str(err.value)
    assert "broken: ERROR (spawn error)" in str(err.value)
    assert rt.status("broken").state == ServiceState.FAILED


def test_start_of_an_autostarted_program_that_keeps_failing(rt: SupervisorRuntime) -> None:
    code = "import sys; sys.stderr.write('boom: bad settings\\n'); sys.exit(3)"
    rt.define(ServiceSpec(name="crashy", command=(PYTHON, "-c", code)))
    wait_for(lambda: rt.status("crashy").state == ServiceState.FAILED, "BACKOFF or FATAL")
    with pytest.raises(CommandFailed, match="boom: bad settings"):
        rt.start("crashy")


def test_a_missing_program_fails_to_start(rt: SupervisorRuntime) -> None:
    rt.define(ServiceSpec(name="nofile", command=("/nonexistent/hapair-prog",), autostart=False))
    with pytest.raises(CommandFailed, match="nofile: ERROR"):
        rt.start("nofile")


def test_arguments_and_environment_arrive_unchanged(rt: SupervisorRuntime) -> None:
    args = ["a ;b", "#c", "100%", "%(here)s", "", "it's", 'say "hi"', "x #y", "tab\there"]
    env = {"PCT": "50%", "SEMI": "a;b", "COMMA": "x,y", "SQ": "it's", "EMPTY": ""}
    code = (
        "import json, os, sys, time; keys = ['PCT', 'SEMI', 'COMMA', 'SQ', 'EMPTY']; "
        "print(json.dumps([sys.argv[1:], {k: os.environ[k] for k in keys}]), flush=True); "
        "time.sleep(300)"
    )
    rt.define(ServiceSpec(name="echo", command=(PYTHON, "-c", code, *args), environment=env,
                          stop_wait_secs=5))
    out_log = Path(rt.log_paths("echo")[0])
    line = wait_for(lambda: out_log.exists() and out_log.read_text(), "the program's output")
    assert json.loads(line) == [args, env]


def test_a_definition_supervisord_rejects_is_taken_back(rt: SupervisorRuntime) -> None:
    bad = ServiceSpec(name="baduser", command=("sleep", "1"), user="hapair-no-such-user")
    with pytest.raises(CommandFailed, match="reread"):
        rt.define(bad)
    assert not Path(rt.conf_path("baduser")).exists()
    # supervisord is not left blocked by the bad file: the next definition works.
    rt.define(ServiceSpec(name="after", command=("sleep", "300"), autostart=False))
    assert rt.status("after").state == ServiceState.STOPPED


def test_unknown_names(rt: SupervisorRuntime) -> None:
    assert rt.status("ghost").state == ServiceState.ABSENT
    with pytest.raises(CommandFailed, match="no such process"):
        rt.start("ghost")
    with pytest.raises(UsageError):
        rt.start("../ghost")


def test_supervisord_down_is_an_error_not_a_state(supervisord: Supervisord) -> None:
    rt = SupervisorRuntime(LocalTransport(), str(supervisord.dir / "missing.conf"))
    with pytest.raises(CommandFailed):
        rt.status("web")
