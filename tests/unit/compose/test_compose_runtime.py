"""ComposeRuntime over a RecordingTransport: exact argument lists for v2 and v1."""

from __future__ import annotations

import json

import pytest
from compose_fixtures import recorded

from hapair.compose.runtime import (
    ComposeRuntime,
    aggregate,
    detect_cli,
    spec_to_service,
    state_of,
)
from hapair.errors import CommandFailed, Refused, UsageError
from hapair.exec.recording import Call, RecordingTransport, Reply, StoredFile
from hapair.exec.runtime import ServiceSpec, ServiceState, ServiceStatus

FILES = ["/opt/idp-cms/docker-compose.yml", "/opt/hapair/idp-cms/node1/compose.override.yml"]
ENVS = ["/opt/idp-cms/.env.node1"]
V2 = ["docker", "compose", "-p", "idp-cms", "-f", FILES[0], "-f", FILES[1],
      "--env-file", ENVS[0]]
V1 = ["docker-compose", "-p", "idp-cms", "-f", FILES[0], "-f", FILES[1], "--env-file", ENVS[0]]


def host(v1: bool = False) -> RecordingTransport:
    t = RecordingTransport("node1", default=Reply(99, stderr="not scripted"))
    if v1:
        t.on(["docker", "compose", "version"], returncode=125,
             stderr="docker: 'compose' is not a docker command.")
        t.on(["docker-compose", "version"], stdout="docker-compose version 1.29.2\n")
    else:
        t.on(["docker", "compose", "version"], stdout="Docker Compose version v2.29.7\n")
    return t


def runtime(t: RecordingTransport, **kw: object) -> ComposeRuntime:
    return ComposeRuntime(t, "idp-cms", FILES, ENVS, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("v1", "base"), [(False, V2), (True, V1)])
@pytest.mark.parametrize(
    ("action", "args", "tail", "timeout"),
    [
        ("start", ("authoring",), ["up", "-d", "--no-deps", "authoring"], 600.0),
        ("stop", ("postgres",), ["stop", "-t", "60", "postgres"], 90.0),
        ("restart", ("postgres",), ["restart", "-t", "60", "postgres"], 660.0),
        ("build", ("hapair-patroni",), ["build", "hapair-patroni"], 600.0),
        ("validate", (), ["config", "-q"], 60.0),
    ],
)
def test_commands(v1: bool, base: list[str], action: str, args: tuple[str, ...],
                  tail: list[str], timeout: float) -> None:
    t = host(v1)
    t.on([*base, *tail], stdout="")
    getattr(runtime(t), action)(*args)
    assert t.calls[-1] == Call("run", tuple(base + tail), timeout=timeout)


def test_cli_is_asked_once_and_v1_only_when_v2_fails() -> None:
    t = host(v1=True)
    t.on_prefix(V1, stdout="")
    rt = runtime(t)
    rt.start("a")
    rt.stop("a")
    assert t.commands[:2] == [("docker", "compose", "version"), ("docker-compose", "version")]
    assert [c for c in t.commands if c[-1] == "version"] == t.commands[:2]
    assert rt.is_v1


def test_no_compose_cli_at_all_is_refused() -> None:
    t = RecordingTransport("node1", default=Reply(127, stderr="sh: docker: not found"))
    with pytest.raises(Refused, match="no Docker Compose CLI .*not found"):
        detect_cli(t)


def test_v1_cannot_take_two_env_files() -> None:
    t = host(v1=True)
    rt = ComposeRuntime(t, "p", ["/a.yml"], ["/a.env", "/b.env"])
    with pytest.raises(UsageError, match="v1 reads one --env-file"):
        rt.start("x")


def test_stop_never_cuts_a_longer_grace_short() -> None:
    t = host()
    t.on_prefix(V2, stdout="")
    rt = runtime(t, stop_timeouts={"hapair-patroni": 120, "web": 5})
    rt.stop("hapair-patroni")
    rt.stop("web")
    assert t.calls[-2] == Call("run", (*V2, "stop", "-t", "120", "hapair-patroni"), timeout=150.0)
    assert t.calls[-1].argv == (*V2, "stop", "-t", "60", "web")  # never below 60 s


def test_exec_passes_input_on_stdin_and_never_in_argv() -> None:
    t = host()
    t.on([*V2, "exec", "-T", "-u", "postgres", "postgres", "psql", "-v", "ON_ERROR_STOP=1"],
         stdout="ALTER ROLE\n")
    result = runtime(t).exec("postgres", ["psql", "-v", "ON_ERROR_STOP=1"],
                             input="ALTER ROLE r PASSWORD 'secret-pw';", user="postgres")
    assert result.stdout == "ALTER ROLE\n"
    call = t.calls[-1]
    assert call.input == b"ALTER ROLE r PASSWORD 'secret-pw';"
    assert not any("secret-pw" in a for a in call.argv)
    assert call.env is None


def test_exec_v1_shape_and_empty_command() -> None:
    t = host(v1=True)
    t.on([*V1, "exec", "-T", "redis", "redis-cli", "PING"], stdout="PONG\n")
    assert runtime(t).exec("redis", ["redis-cli", "PING"]).stdout == "PONG\n"
    with pytest.raises(UsageError):
        runtime(t).exec("redis", [])


def test_logs_and_run_once() -> None:
    t = host()
    t.on([*V2, "logs", "--no-color", "--tail", "20", "authoring"], stdout="line\n")
    t.on([*V2, "run", "--rm", "-T", "--no-deps", "migrate"], stdout="Applying…\n")
    rt = runtime(t)
    assert rt.logs("authoring", 20) == "line\n"
    assert rt.run_once("migrate").stdout == "Applying…\n"


def test_profiles_go_before_the_command() -> None:
    t = host()
    t.on([*V2, "--profile", "migrate", "run", "--rm", "-T", "--no-deps", "migrate"])
    runtime(t, profiles=["migrate"]).run_once("migrate")
    assert t.commands[-1][-7:] == ("--profile", "migrate", "run", "--rm", "-T", "--no-deps",
                                   "migrate")


def test_a_failed_up_says_why_with_the_containers_last_words() -> None:
    t = host()
    t.on([*V2, "up", "-d", "--no-deps", "hapair-patroni"], returncode=1,
         stderr="Error response from daemon: container exited")
    t.on([*V2, "logs", "--no-color", "--tail", "20", "hapair-patroni"],
         stdout="FATAL: data directory has wrong ownership\n")
    with pytest.raises(CommandFailed, match="wrong ownership"):
        runtime(t).start("hapair-patroni")


def test_bad_service_names_never_reach_the_host() -> None:
    t = host()
    with pytest.raises(UsageError):
        runtime(t).start("--rm")
    assert t.commands == []


# --- status ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "health", "code", "expected"),
    [
        ("running", "", 0, ServiceState.RUNNING),
        ("running", "healthy", 0, ServiceState.RUNNING),
        ("running", "starting", 0, ServiceState.STARTING),
        ("running", "unhealthy", 0, ServiceState.FAILED),
        ("restarting", "", 1, ServiceState.FAILED),
        ("exited", "", 0, ServiceState.STOPPED),
        ("exited", "", 137, ServiceState.FAILED),
        ("created", "", None, ServiceState.STOPPED),
        ("paused", "", None, ServiceState.STOPPED),
        ("dead", "", None, ServiceState.FAILED),
    ],
)
def test_state_mapping(state: str, health: str, code: int | None,
                       expected: ServiceState) -> None:
    assert state_of(state, health, code)[0] is expected


def test_aggregate_is_the_worst_container() -> None:
    run = (ServiceState.RUNNING, "running")
    bad = (ServiceState.FAILED, "exited (1)")
    assert aggregate("w", [run, bad]) == ServiceStatus("w", ServiceState.FAILED,
                                                       detail="exited (1) (2 containers)")
    assert aggregate("w", []).state is ServiceState.STOPPED


def test_status_v2_reads_ps_json() -> None:
    t = host()
    line = next(x for x in recorded("ps.json").splitlines() if '"Service":"postgres"' in x)
    t.on([*V2, "ps", "-a", "--format", "json", "postgres"], stdout=line + "\n")
    assert runtime(t).status("postgres") == ServiceStatus(
        "postgres", ServiceState.RUNNING, detail="running (healthy)")


def test_status_of_a_service_without_container_or_definition() -> None:
    t = host()
    t.on([*V2, "ps", "-a", "--format", "json", "migrate"], stdout="")
    t.on([*V2, "ps", "-a", "--format", "json", "nope"], returncode=1,
         stderr="no such service: nope")
    rt = runtime(t)
    assert rt.status("migrate").state is ServiceState.STOPPED
    assert rt.status("nope").state is ServiceState.ABSENT


def test_status_all_v2_lists_every_defined_service() -> None:
    t = host()
    t.on([*V2, "config", "--services"], stdout="postgres\nminio-setup\nmigrate\n")
    t.on([*V2, "ps", "-a", "--format", "json"], stdout=recorded("ps.json"))
    statuses = {s.name: s.state for s in runtime(t).status_all()}
    assert statuses == {"postgres": ServiceState.RUNNING, "minio-setup": ServiceState.STOPPED,
                        "migrate": ServiceState.STOPPED}


def test_status_v1_reads_ps_ids_and_inspect() -> None:
    t = host(v1=True)
    rows = json.loads(recorded("inspect.json"))
    pg = next(r for r in rows if r["Name"] == "/idp-cms-postgres-1")
    t.on([*V1, "ps", "-a", "-q", "postgres"], stdout=pg["Id"] + "\n")
    t.on(["docker", "inspect", pg["Id"]], stdout=json.dumps([pg]))
    assert runtime(t).status("postgres").state is ServiceState.RUNNING


def test_unreadable_ps_output_is_a_failure_not_a_guess() -> None:
    t = host()
    t.on([*V2, "ps", "-a", "--format", "json", "x"], stdout="<html>")
    with pytest.raises(CommandFailed, match="not JSON"):
        runtime(t).status("x")


# --- define / remove through the override file ------------------------------------------------


SPEC = ServiceSpec(name="hapair-tool", command=("sleep", "infinity"), user="nobody",
                   environment={"MODE": "x"}, stop_wait_secs=90)


def test_spec_to_service() -> None:
    assert spec_to_service(SPEC) == {
        "command": ["sleep", "infinity"], "user": "nobody", "environment": {"MODE": "x"},
        "restart": "unless-stopped", "stop_signal": "SIGTERM", "stop_grace_period": "90s"}


def test_define_writes_the_override_validates_and_starts() -> None:
    t = host()
    t.on_prefix(V2, stdout="")
    t.on_prefix(["mkdir"], stdout="")
    rt = runtime(t, override_file=None)
    with pytest.raises(UsageError, match="override_file"):
        rt.define(SPEC)
    rt = ComposeRuntime(t, "idp-cms", FILES[:1], ENVS, override_file=FILES[1])
    rt.define(SPEC)
    text = t.text(FILES[1])
    assert "hapair-tool:" in text and "stop_grace_period: 90s" in text
    assert t.files[FILES[1]].mode == 0o644
    assert t.commands[-2:] == [(*V2, "config", "-q"), (*V2, "up", "-d", "--no-deps",
                                                       "hapair-tool")]
    rt.stop("hapair-tool")
    assert t.commands[-1] == (*V2, "stop", "-t", "90", "hapair-tool")


def test_define_puts_the_old_override_back_when_compose_rejects_it() -> None:
    t = host()
    t.files[FILES[1]] = StoredFile(b"services: {}\n")
    t.on_prefix(["mkdir"], stdout="")
    t.on([*V2, "config", "-q"], returncode=15, stderr="service hapair-tool has no image")
    rt = ComposeRuntime(t, "idp-cms", FILES[:1], ENVS, override_file=FILES[1])
    with pytest.raises(CommandFailed, match="has no image"):
        rt.define(SPEC)
    assert t.text(FILES[1]) == "services: {}\n"
    assert not [c for c in t.commands if "up" in c]


def test_remove_tolerates_an_absent_service() -> None:
    t = host()
    t.on([*V2, "rm", "-s", "-f", "gone"], returncode=1, stderr="no such service: gone")
    runtime(t).remove("gone")
    t.on([*V2, "rm", "-s", "-f", "x"], returncode=1, stderr="permission denied")
    with pytest.raises(CommandFailed):
        runtime(t).remove("x")
