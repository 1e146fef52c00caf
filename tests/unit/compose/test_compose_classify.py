"""Recognising services and what is wrong with them: table-driven."""

from __future__ import annotations

import pytest
from compose_fixtures import COMPOSE_FILE, ENV_FILE

from hapair.compose.classify import (
    classify,
    embeds_beat,
    image_name,
    image_tag,
    runs_migrate,
)
from hapair.compose.collect import discover_offline
from hapair.compose.findings import findings
from hapair.compose.model import (
    Mount,
    NetworkAttachment,
    PortBinding,
    Project,
    RoleMatch,
    Service,
    Undecided,
    VersionFact,
)


def svc(name: str = "s", **kw: object) -> Service:
    return Service(name=name, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("service", "role"),
    [
        (svc(image="postgres:17"), "postgres"),
        (svc(image="postgis/postgis:16-3.4"), "postgres"),
        (svc(image="docker.io/bitnami/postgresql:16"), "postgres"),
        (svc(image="redis:7.2-alpine"), "redis"),
        (svc(image="valkey/valkey:8"), "redis"),
        (svc(image="redis:7", command=("redis-server", "/s.conf", "--sentinel")), None),
        (svc(image="quay.io/minio/minio:RELEASE.2024-06-13T22-53-53Z",
             command=("server", "/data")), "storage"),
        (svc(image="minio/mc:latest"), "storage_setup"),
        (svc(image="alpine", entrypoint=("sh", "-c", "mc alias set x && mc mb x/b")),
         "storage_setup"),
        (svc(image="app", command=("celery", "-A", "config", "beat")), "scheduler"),
        (svc(image="app", command=("celery", "-A", "config", "worker", "-l", "info"),
             environment={"DJANGO_SETTINGS_MODULE": "x"}), "worker"),
        (svc(image="app", command=("gunicorn", "config.wsgi")), "backend"),
        (svc(image="app", command=("uvicorn", "main:app")), "backend"),
        (svc(image="app", command=("python", "manage.py", "runserver", "0.0.0.0:8000")),
         "backend"),
        (svc(image="app", environment={"DJANGO_SETTINGS_MODULE": "x"}), "backend"),
        (svc(image="web", command=("npm", "run", "start")), "frontend"),
        (svc(image="web", command=("node", ".next/standalone/server.js")), "frontend"),
        (svc(image="web", environment={"NEXT_PUBLIC_SITE_URL": "x"}), "frontend"),
        (svc(image="node:20", expose=("3000",)), "frontend"),
        (svc(image="nginx:1.27-alpine", ports=(PortBinding(80, "80"),)), "http_lb"),
        (svc(image="nginx:1.27-alpine"), None),  # an nginx that publishes nothing is no LB
        (svc(image="mailhog/mailhog"), None),
    ],
)
def test_roles(service: Service, role: str | None) -> None:
    roles, _ = classify(Project("p", {service.name: service}))
    assert [m.role for m in roles] == ([role] if role else [])


def test_two_candidates_for_a_single_role_stay_undecided() -> None:
    proj = Project("p", {"db": svc("db", image="postgres:17"),
                         "db-old": svc("db-old", image="postgres:15"),
                         "w1": svc("w1", command=("celery", "worker")),
                         "w2": svc("w2", command=("celery", "worker"))})
    roles, undecided = classify(proj)
    assert undecided == (Undecided("postgres", ("db", "db-old")),)
    assert [m.service for m in roles if m.role == "worker"] == ["w1", "w2"]  # many allowed
    assert all(m.role != "postgres" for m in roles)


def test_the_fixture_is_recognised_with_reasons() -> None:
    stack = discover_offline([COMPOSE_FILE], [ENV_FILE])
    assert {(m.role, m.service) for m in stack.roles} == {
        ("postgres", "postgres"), ("redis", "redis"), ("storage", "minio"),
        ("storage_setup", "minio-setup"), ("backend", "authoring"),
        ("worker", "celery-worker"), ("scheduler", "celery-beat"),
        ("frontend", "frontend"), ("http_lb", "nginx")}
    assert RoleMatch("backend", "authoring", "runs gunicorn") in stack.roles
    assert stack.unassigned == ()


@pytest.mark.parametrize(
    ("image", "name", "tag"),
    [("postgres:17", "postgres", "17"), ("postgres", "postgres", None),
     ("registry:5000/team/app:1.2", "app", "1.2"), ("postgres:17@sha256:abc", "postgres", "17"),
     (None, "", None)],
)
def test_image_names(image: str | None, name: str, tag: str | None) -> None:
    assert (image_name(image), image_tag(image)) == (name, tag)


@pytest.mark.parametrize(
    ("command", "migrate", "beat"),
    [
        (("sh", "-c", "python manage.py migrate --noinput && gunicorn x"), True, False),
        (("django-admin", "migrate"), True, False),
        (("alembic", "upgrade", "head"), True, False),
        (("python", "manage.py", "makemigrations"), False, False),
        (("celery", "-A", "x", "worker", "-B"), False, True),
        (("celery", "-A", "x", "worker", "--beat", "-l", "info"), False, True),
        (("celery", "-A", "x", "worker", "-l", "info"), False, False),
    ],
)
def test_migrate_and_embedded_beat(command: tuple[str, ...], migrate: bool, beat: bool) -> None:
    s = svc(command=command)
    assert (runs_migrate(s), embeds_beat(s)) == (migrate, beat)


# --- findings ----------------------------------------------------------------------------------


def codes_for(service: Service, role: str = "postgres",
              version: VersionFact | None = None) -> set[str]:
    proj = Project("p", {service.name: service})
    versions = {"postgres": version} if version else {}
    return {f.code for f in findings(proj, [RoleMatch(role, service.name, "")],  # type: ignore[arg-type]
                                     versions)}


GOOD_PG = dict(image="postgres:17", restart="no", stop_grace_period_s=120.0,
               mounts=(Mount("volume", "/var/lib/postgresql/data", "pgdata"),),
               ports=(PortBinding(5432, "5432", "10.0.0.11"),))


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({}, None),
        ({"ports": (PortBinding(5432, "5432"),)}, "public-data-port"),
        ({"ports": (PortBinding(5432, "5432", "0.0.0.0"),)}, "public-data-port"),
        ({"restart": "always"}, "pg-restart-resurrects"),
        ({"restart": "unless-stopped"}, "pg-restart-resurrects"),
        ({"stop_grace_period_s": None}, "pg-stop-grace"),
        ({"stop_grace_period_s": 30.0}, "pg-stop-grace"),
        ({"mounts": ()}, "pg-data-not-named"),
        ({"mounts": (Mount("volume", "/var/lib/postgresql/data"),)}, "pg-data-not-named"),
        ({"image": "postgres"}, "unpinned-image"),
        ({"image": "postgres:latest"}, "unpinned-image"),
        ({"networks": (NetworkAttachment("cms", "172.28.0.10"),)}, "bridge-address"),
        ({"command": ("sh", "-c", "python manage.py migrate && gunicorn x")}, "migrate-on-start"),
    ],
)
def test_postgres_findings(changes: dict, code: str | None) -> None:
    found = codes_for(svc("db", **{**GOOD_PG, **changes}))
    assert found == ({code} if code else set())


def test_tag_mismatch_only_with_a_verified_version() -> None:
    s = svc("db", **GOOD_PG)
    server = VersionFact("postgres", "16.4", 16, "data directory", True)
    tag = VersionFact("postgres", "16", 16, "image tag", False)
    assert "pg-tag-mismatch" in codes_for(s, version=server)
    assert "pg-tag-mismatch" not in codes_for(s, version=tag)


def test_redis_findings() -> None:
    redis = svc("r", image="redis:7", command=(
        "sh", "-c", "echo 'protected-mode no' > /tmp/redis.conf && redis-server /tmp/redis.conf"))
    assert codes_for(redis, "redis") == {"redis-generated-config", "redis-protected-mode-off"}


def test_fixture_findings_name_the_original_defects() -> None:
    stack = discover_offline([COMPOSE_FILE], [ENV_FILE])
    by_code: dict[str, list] = {}
    for f in stack.findings:
        by_code.setdefault(f.code, []).append(f)
    assert {f.service for f in by_code["public-data-port"]} == {"postgres", "redis", "minio"}
    assert by_code["public-data-port"][0].defect == 26
    assert by_code["migrate-on-start"][0].service == "authoring"
    assert by_code["migrate-on-start"][0].defect == 24
    assert by_code["pg-restart-resurrects"][0].defect == 16
    assert by_code["scheduler-singleton"][0].service == "celery-beat"
    assert "postgres 172.28.0.10" in by_code["bridge-address"][0].message
    assert {f.message.split(" ")[0] for f in by_code["version-unverified"]} == {
        "postgres", "redis", "minio"}
