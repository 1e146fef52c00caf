"""The inventory draft from the original deployment: golden files, and proof that it is a
valid inventory once (and only once) its TODO values are filled in."""

from __future__ import annotations

from pathlib import Path

import pytest
from compose_fixtures import (
    COMPOSE_FILE,
    ENV_FILE,
    FIXTURE,
    HOST_KEY,
    assert_no_secret,
    filled_draft,
    golden,
)

from hapair.compose.collect import discover_offline, discover_remote
from hapair.compose.draft import (
    TODO,
    SshInfo,
    align_comments,
    app_port,
    buckets_created,
    health_path,
    render_draft,
)
from hapair.compose.model import Service
from hapair.errors import InventoryError
from hapair.exec.recording import RecordingTransport
from hapair.inventory import parse_inventory

SSH = SshInfo("10.0.0.11", "root", 22, "/root/.ssh/id_ed25519", HOST_KEY)


def offline_draft() -> tuple[str, int]:
    text, todo = render_draft(discover_offline([COMPOSE_FILE], [ENV_FILE]))
    return text.replace(str(FIXTURE), "@FIXTURE@"), todo


def test_offline_draft_golden() -> None:
    text, _ = offline_draft()
    golden("draft-offline.yaml", text)


def test_ssh_draft_golden(original_host: RecordingTransport) -> None:
    text, _ = render_draft(discover_remote(original_host), SSH)
    golden("draft-ssh.yaml", text)


def test_every_todo_is_counted_and_commented(original_host: RecordingTransport) -> None:
    for text, todo in (offline_draft(), render_draft(discover_remote(original_host), SSH)):
        values = [line for line in text.splitlines() if TODO in line.split("#")[0]]
        assert len(values) == todo > 0
        assert all("# TODO: " in line for line in values), values
        # secrets are never copied: each reference says which variable holds the value
        refs = [line for line in text.splitlines() if "{file: secrets/" in line]
        assert len(refs) == 5
        assert all("# TODO: create secrets/" in line and "(chmod 600)" in line for line in refs)


def test_ssh_draft_decides_more_than_offline(original_host: RecordingTransport) -> None:
    _, offline_todo = offline_draft()
    text, ssh_todo = render_draft(discover_remote(original_host), SSH)
    # node1's address and host key are known, and the ssh key of all three hosts
    assert ssh_todo == offline_todo - 5
    assert "version: 17  # read from the server" in text


def test_no_secret_in_the_draft(original_host: RecordingTransport) -> None:
    assert_no_secret(offline_draft()[0])
    assert_no_secret(render_draft(discover_remote(original_host), SSH)[0])


def test_the_unfilled_draft_is_refused_by_the_inventory_check(tmp_path: Path) -> None:
    text, _ = render_draft(discover_offline([COMPOSE_FILE], [ENV_FILE]))
    with pytest.raises(InventoryError, match=r"hosts\[0\]\.address: '<TODO>' is not a valid IP"):
        parse_inventory(text, base_dir=tmp_path)


@pytest.mark.parametrize("source", ["offline", "ssh"])
def test_the_filled_draft_is_a_valid_inventory(
    tmp_path: Path, original_host: RecordingTransport, source: str
) -> None:
    stack = discover_offline([COMPOSE_FILE], [ENV_FILE]) if source == "offline" \
        else discover_remote(original_host)
    text, _ = render_draft(stack, SSH if source == "ssh" else None)
    inv = parse_inventory(filled_draft(text, tmp_path), base_dir=tmp_path)
    pg = inv.services.postgres
    assert (pg.version, pg.port, pg.database, pg.owner) == (17, 5432, "idp_cms", "idp")
    assert pg.data_dir == "/var/lib/postgresql/data/pgdata"
    assert pg.bin_dir == "/usr/lib/postgresql/17/bin"
    assert inv.services.storage.buckets == ("idp-media", "idp-private")
    assert (inv.services.backend.port, inv.services.backend.health) == (8000, "/health/")
    assert (inv.services.frontend.port, inv.services.frontend.health) == (3000, "/api/health")
    assert inv.services.http_lb.kind == "nginx"
    node1, node2 = inv.nodes
    assert node1.compose is not None and node1.compose.project == "idp-cms"
    assert node2.compose is not None and node2.compose.env_files[0].endswith(".env.node2")
    assert inv.witness is not None and inv.witness.compose is not None
    assert inv.witness.compose.project == "idp-cms-hapair"
    roles = node1.compose.services
    assert (roles.postgres, roles.redis, roles.storage, roles.backend, roles.frontend,
            roles.worker, roles.scheduler, roles.http_lb) == (
        "postgres", "redis", "minio", "authoring", "frontend", ("celery-worker",),
        "celery-beat", "nginx")
    assert node2.compose.services == roles
    assert inv.warnings == ()


# --- the small readers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "port"),
    [
        (Service("a", command=("gunicorn", "x", "--bind", "0.0.0.0:8001")), 8001),
        (Service("a", command=("gunicorn", "x", "--bind=unix:/s", "-b", ":8002")), 8002),
        (Service("a", command=("next", "start", "-p", "3001")), 3001),
        (Service("a", command=("uvicorn", "m:app", "--port", "8003")), 8003),
        (Service("a", environment={"PORT": "3002"}), 3002),
        (Service("a", expose=("8004/tcp",)), 8004),
        (Service("a"), None),
    ],
)
def test_app_port(service: Service, port: int | None) -> None:
    assert app_port(service)[0] == port


@pytest.mark.parametrize(
    ("test", "path"),
    [
        (("CMD", "curl", "-fsS", "http://localhost:8000/health/"), "/health/"),
        (("CMD-SHELL", "wget -qO- 'http://127.0.0.1:3000/api/health' || exit 1"), "/api/health"),
        (("CMD-SHELL", "pg_isready"), None),
        (None, None),
    ],
)
def test_health_path(test: tuple[str, ...] | None, path: str | None) -> None:
    assert health_path(Service("a", healthcheck=test)) == path


def test_buckets_from_mc_commands() -> None:
    setup = Service("s", entrypoint=("sh", "-c", "mc alias set l http://m:9000 u p && "
                                     "mc mb --ignore-existing l/media && mc mb -p l/private && "
                                     "mc mb l/media && mc anonymous set download l/media"))
    assert buckets_created(setup) == ["media", "private"]


def test_align_comments() -> None:
    assert align_comments("a: 1 # x\nb:   2     # y\n# full line\nc: '#not'\n") == (
        "a: 1  # x\nb:   2  # y\n# full line\nc: '#not'\n")
