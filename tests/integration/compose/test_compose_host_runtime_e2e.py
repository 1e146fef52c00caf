"""Opt-in end-to-end test of ComposeHostRuntime against a real Docker engine (HAPAIR_DOCKER_E2E=1).

Two projects as on a real compose node: the user's (`authoring` as the backend) and hapair's
own at its fixed path (/opt/hapair/<project>/node1/docker-compose.hapair.yml). Program names
reach the right containers, files written through a container shell land with their mode,
and everything (projects, volumes, the file under /opt/hapair, the private engine) is removed
even on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from private_engine import image_fixture  # noqa: F401 — the `image` fixture

from hapair.compose.draft import HAPAIR_DIR, hapair_compose_file
from hapair.compose.host_runtime import ComposeHostRuntime
from hapair.exec.local import LocalTransport
from hapair.exec.runtime import ServiceSpec, ServiceState
from hapair.inventory.fields import LoadContext
from hapair.inventory.model import Host

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("HAPAIR_DOCKER_E2E") != "1",
                       reason="opt-in: set HAPAIR_DOCKER_E2E=1 (needs a Docker engine)"),
]

HOLD = ["sh", "-c", "echo started; trap 'exit 0' TERM; while true; do sleep 1; done"]
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"


def service(image: str) -> dict[str, object]:
    return {"image": image, "command": HOLD, "stop_grace_period": "5s"}


def compose_text(image: str, *names: str, profiles: dict[str, list[str]] | None = None) -> str:
    services = {n: service(image) | ({"profiles": profiles[n]} if n in (profiles or {}) else {})
                for n in names}
    return json.dumps({"services": services})  # JSON is YAML


@pytest.fixture
def host_runtime(tmp_path: Path, image: str) -> Iterator[ComposeHostRuntime]:
    project = f"hapair-e2e-{uuid.uuid4().hex[:8]}"
    app_file = tmp_path / "compose.yaml"
    # node2's scheduler, as the edit leaves it: started only when named (it follows the primary)
    app_file.write_text(compose_text(image, "authoring", "web", "celery-beat",
                                     profiles={"celery-beat": ["scheduler"]}))
    pair_file = Path(hapair_compose_file(project, "node1"))
    pair_file.parent.mkdir(parents=True)
    pair_file.write_text(compose_text(image, "hapair-etcd", "hapair-patroni"))
    key = tmp_path / "id_ed25519"
    key.write_text("not used: the runtime runs locally\n")
    key.chmod(0o600)
    host = Host.model_validate({
        "name": "node1", "address": "127.0.0.1", "roles": ["node"], "runtime": "compose",
        "compose": {"project": project, "files": [str(app_file)],
                    "services": {"backend": "authoring", "http_lb": "web",
                                 "scheduler": "celery-beat"}},
        "ssh": {"key": str(key), "host_key": HOST_KEY},
    }, context=LoadContext(base_dir=tmp_path, source="e2e", env={}))
    rt = ComposeHostRuntime(LocalTransport(), host)
    try:
        yield rt
    finally:
        for which in ("app", "hapair"):
            proj = rt.project(which)
            proj.transport.run(proj.argv("down", "-v", "-t", "5"), check=False, timeout=120.0)
        shutil.rmtree(Path(HAPAIR_DIR) / project, ignore_errors=True)


def test_program_names_reach_both_projects(host_runtime: ComposeHostRuntime) -> None:
    rt = host_runtime
    rt.start("backend")
    rt.define(ServiceSpec("etcd", ("ignored: the generated file defines it",)))
    rt.start("patroni")
    states = {s.name: s.state for s in rt.status_all()}
    assert states == {"backend": ServiceState.RUNNING, "nginx": ServiceState.STOPPED,
                      "scheduler": ServiceState.STOPPED, "etcd": ServiceState.RUNNING,
                      "patroni": ServiceState.RUNNING}

    shell = rt.shell("patroni")  # (busybox image: no /tmp, so the root directory)
    shell.write_file("/secret.conf", "s3cret\n", mode=0o600)
    assert shell.read_file("/secret.conf") == b"s3cret\n"
    assert shell.run(["stat", "-c", "%a", "/secret.conf"]).stdout.strip() == "600"
    assert shell.run(["env"], env={"PROBE": "1"}).stdout.count("PROBE=1") == 1
    with pytest.raises(FileNotFoundError):
        shell.read_file("/missing")
    # The etcd container did not get patroni's file: each program has its own container.
    assert not rt.shell("etcd").run(["cat", "/secret.conf"], check=False).ok

    rt.start("scheduler")  # named explicitly: its profile does not keep it down
    assert rt.status("scheduler").state is ServiceState.RUNNING

    rt.stop("patroni")
    assert rt.status("patroni").state is ServiceState.STOPPED
    assert rt.status("etcd").state is ServiceState.RUNNING
    assert rt.status("backend").state is ServiceState.RUNNING
    rt.remove("etcd")
    assert rt.status("etcd").detail == "no container"
