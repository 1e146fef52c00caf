"""A compose host's ServiceRuntime: hapair's program names routed to hapair's generated project
or to the user's (through `compose.services`), exact argument lists, and the tools of a program
run inside its container. The inventory is the idp-cms draft, filled in as a user would."""

from __future__ import annotations

from pathlib import Path

import pytest
from compose_fixtures import COMPOSE_FILE, ENV_FILE, filled_draft

from hapair.compose.collect import discover_offline
from hapair.compose.draft import render_draft
from hapair.compose.host_runtime import ComposeHostRuntime, ContainerTransport
from hapair.compose.programs import place, program_of
from hapair.errors import CommandFailed, InventoryError, Refused
from hapair.exec.recording import Call, RecordingTransport, Reply
from hapair.exec.runtime import ServiceSpec, ServiceState
from hapair.inventory import Inventory, parse_inventory
from hapair.inventory.model import ComposeServices

APP_FILE, APP_ENV = str(COMPOSE_FILE), str(ENV_FILE)
APP = ["docker", "compose", "-p", "idp-cms", "-f", APP_FILE, "--env-file", APP_ENV]
PAIR_FILE = "/opt/hapair/idp-cms/node1/docker-compose.hapair.yml"
PAIR = ["docker", "compose", "-p", "idp-cms-hapair", "-f", PAIR_FILE]
WITNESS_FILE = "/opt/hapair/idp-cms/witness/docker-compose.hapair.yml"
WITNESS = ["docker", "compose", "-p", "idp-cms-hapair", "-f", WITNESS_FILE]
ROLES = ComposeServices(postgres="postgres", redis="redis", backend="authoring",
                        worker=("celery-worker", "celery-worker-2"), scheduler="celery-beat")


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    base = tmp_path_factory.mktemp("inv")
    text, _ = render_draft(discover_offline([COMPOSE_FILE], [ENV_FILE]))
    return parse_inventory(filled_draft(text, base), base_dir=base)


def docker_host(name: str = "node1") -> RecordingTransport:
    t = RecordingTransport(name, default=Reply(99, stderr="not scripted"))
    t.on(["docker", "compose", "version"], stdout="Docker Compose version v2.29.7\n")
    return t


# --- placement (pure) --------------------------------------------------------------------------


@pytest.mark.parametrize(("program", "project", "service"), [
    ("patroni", "hapair", "hapair-patroni"),
    ("etcd", "hapair", "hapair-etcd"),
    ("router", "hapair", "hapair-router"),
    ("redis", "hapair", "hapair-redis"),  # the pair's Redis, not the user's
    ("hapair-sentinel", "hapair", "hapair-sentinel"),
    ("backend", "app", "authoring"),
    ("postgres", "app", "postgres"),
    ("scheduler", "app", "celery-beat"),
    ("worker", "app", "celery-worker"),
])
def test_place(program: str, project: str, service: str) -> None:
    where = place("node1", program, ROLES, has_app=True)
    assert (where.project, where.service) == (project, service)
    assert program_of(where, ROLES) == (program.removeprefix("hapair-") if project == "hapair"
                                        or program != "worker" else "celery-worker")


@pytest.mark.parametrize(("program", "has_app", "message"), [
    ("nginx", True, "no `compose.services.http_lb` in the inventory for node1"),
    ("backend", False, "this host runs hapair's project only"),
    ("pgbouncer", True, "'pgbouncer' has no place on a compose host"),
    ("hapair-s3-writer", True, "'hapair-s3-writer' has no place on a compose host"),
])
def test_place_refuses_what_has_no_place(program: str, has_app: bool, message: str) -> None:
    with pytest.raises(Refused, match=message):
        place("node1", program, ROLES, has_app=has_app)


def test_a_service_cannot_play_two_roles(tmp_path: Path) -> None:
    text, _ = render_draft(discover_offline([COMPOSE_FILE], [ENV_FILE]))
    text = text.replace("\n        scheduler: celery-beat\n", "\n        scheduler: authoring\n", 1)
    with pytest.raises(InventoryError, match=r"hosts\[0\]\.compose\.services\.scheduler: "
                                             r"service 'authoring' already plays backend"):
        parse_inventory(filled_draft(text, tmp_path), base_dir=tmp_path)


# --- the runtime: exact commands ---------------------------------------------------------------


@pytest.mark.parametrize(("action", "program", "argv"), [
    ("stop", "patroni", [*PAIR, "stop", "-t", "120", "hapair-patroni"]),
    ("stop", "etcd", [*PAIR, "stop", "-t", "60", "hapair-etcd"]),
    ("start", "sentinel", [*PAIR, "up", "-d", "--no-deps", "hapair-sentinel"]),
    ("restart", "router", [*PAIR, "restart", "-t", "60", "hapair-router"]),
    ("start", "backend", [*APP, "up", "-d", "--no-deps", "authoring"]),
    ("stop", "nginx", [*APP, "stop", "-t", "60", "nginx"]),
    ("stop", "scheduler", [*APP, "stop", "-t", "60", "celery-beat"]),
])
def test_commands_go_to_the_right_project(inventory: Inventory, action: str, program: str,
                                          argv: list[str]) -> None:
    t = docker_host()
    t.on(argv)
    getattr(ComposeHostRuntime(t, inventory.host("node1")), action)(program)
    assert t.commands == [("docker", "compose", "version"), tuple(argv)]


def test_the_cli_is_asked_once_for_both_projects(inventory: Inventory) -> None:
    t = docker_host()
    t.on([*PAIR, "stop", "-t", "120", "hapair-patroni"])
    t.on([*APP, "up", "-d", "--no-deps", "authoring"])
    rt = ComposeHostRuntime(t, inventory.host("node1"))
    rt.stop("patroni")
    rt.start("backend")
    assert [c for c in t.commands if c[-1] == "version"] == [("docker", "compose", "version")]


def test_the_witness_runs_hapair_s_project_only(inventory: Inventory) -> None:
    t = docker_host("witness")
    t.on([*WITNESS, "stop", "-t", "60", "hapair-etcd"])
    rt = ComposeHostRuntime(t, inventory.host("witness"))
    rt.stop("etcd")
    assert t.commands[-1] == (*WITNESS, "stop", "-t", "60", "hapair-etcd")
    with pytest.raises(Refused, match="witness: no compose service for 'backend' "
                                      r"\(this host runs hapair's project only\)"):
        rt.start("backend")


def test_status_names_the_program(inventory: Inventory) -> None:
    t = docker_host()
    t.on([*PAIR, "ps", "-a", "--format", "json", "hapair-patroni"], stdout=(
        '{"Service": "hapair-patroni", "State": "exited", "ExitCode": 0, "Health": ""}\n'))
    status = ComposeHostRuntime(t, inventory.host("node1")).status("patroni")
    assert (status.name, status.state) == ("patroni", ServiceState.STOPPED)


def test_define_brings_up_the_generated_service_and_refuses_the_user_s(
        inventory: Inventory) -> None:
    t = docker_host()
    t.on([*PAIR, "up", "-d", "--no-deps", "hapair-etcd"])
    rt = ComposeHostRuntime(t, inventory.host("node1"))
    rt.define(ServiceSpec("etcd", ("/usr/bin/etcd", "--config-file", "/etc/hapair/etcd.yaml")))
    assert t.commands[-1] == (*PAIR, "up", "-d", "--no-deps", "hapair-etcd")
    before = list(t.calls)
    with pytest.raises(Refused, match="'backend' is the user's service 'authoring'; hapair "
                                      "does not redefine it"):
        rt.define(ServiceSpec("backend", ("gunicorn",)))
    with pytest.raises(Refused, match="does not remove it"):
        rt.remove("backend")
    assert t.calls == before  # nothing ran


def test_a_failed_stop_is_an_error(inventory: Inventory) -> None:
    t = docker_host()
    t.on([*PAIR, "stop", "-t", "120", "hapair-patroni"], returncode=1,
         stderr="Cannot connect to the Docker daemon")
    with pytest.raises(CommandFailed, match="Cannot connect to the Docker daemon"):
        ComposeHostRuntime(t, inventory.host("node1")).stop("patroni")


# --- tools inside a program's container --------------------------------------------------------


def test_shell_runs_inside_the_container_with_user_and_env(inventory: Inventory) -> None:
    t = docker_host()
    # the environment through `exec -e`: no `env` binary needed in the image
    argv = [*PAIR, "exec", "-T", "-u", "postgres", "-e", "PGCONNECT_TIMEOUT=5",
            "hapair-patroni", "psql", "-XAtc", "SELECT 1"]
    t.on(argv, stdout="1\n")
    sh = ComposeHostRuntime(t, inventory.host("node1")).shell("patroni")
    res = sh.run(["psql", "-XAtc", "SELECT 1"], user="postgres", env={"PGCONNECT_TIMEOUT": "5"})
    assert res.stdout == "1\n" and t.commands[-1] == tuple(argv)
    assert sh.name == "node1"


def test_container_files_secret_on_stdin_mode_first(inventory: Inventory) -> None:
    t = docker_host()
    exec_ = [*PAIR, "exec", "-T", "hapair-patroni"]
    t.on_prefix([*exec_, "sh"])
    t.on([*exec_, "cat", "/etc/hapair/missing"], returncode=1,
         stderr="cat: /etc/hapair/missing: No such file or directory")
    sh: ContainerTransport = ComposeHostRuntime(t, inventory.host("node1")).shell("patroni")
    sh.write_file("/etc/hapair/pgpass", "s3cret\n", mode=0o600, owner="postgres")
    call = t.calls[-1]
    assert call.argv[:len(exec_) + 2] == (*exec_, "sh", "-c")
    assert call.argv[-4:] == ("sh", "/etc/hapair/pgpass", "600", "postgres")
    assert call.input == b"s3cret\n" and all("s3cret" not in a for a in call.argv)
    assert "umask 077" in call.argv[len(exec_) + 2]
    with pytest.raises(FileNotFoundError):
        sh.read_file("/etc/hapair/missing")


def test_recording_call_shape_is_what_a_real_transport_gets(inventory: Inventory) -> None:
    t = docker_host()
    t.on([*PAIR, "logs", "--no-color", "--tail", "5", "hapair-patroni"], stdout="ok\n")
    assert ComposeHostRuntime(t, inventory.host("node1")).logs("patroni", 5) == "ok\n"
    assert t.calls[-1] == Call("run", (*PAIR, "logs", "--no-color", "--tail", "5",
                                       "hapair-patroni"), timeout=60.0)
