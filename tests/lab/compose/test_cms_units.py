"""The CMS app of the compose lab, without a lab (no root): the stack option, the image recipe,
how hapair's own discovery and edits read the `cms` stack, the article check and the load's
impact summary (bench/upgrade-compose)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cms_app
import compose_stack as cs
import load_impact as li
import pytest
from image_recipes import CMS_IMAGE, cms_image
from ruamel.yaml import YAML

from hapair.compose.collect import discover_offline
from hapair.compose.edits import NodeEdit, edit_compose_file
from hapair.drill.records import ArticleAck, RequestRecord

SECRETS = ("pgpw", "redispw", "AKEY", "skey", "djkey")


def _load(text: str) -> dict:
    return YAML(typ="safe", pure=True).load(text)


def test_the_default_stack_is_the_busybox_one_and_unknown_apps_are_refused() -> None:
    assert cs.compose_file("img") == cs.compose_file("img", app="busybox")
    assert "httpd" in cs.compose_file("img")
    with pytest.raises(ValueError, match="one of busybox, cms"):
        cs.compose_file("img", app="django")


def test_the_cms_stack_keeps_the_data_services_and_adds_storage_and_the_backend() -> None:
    busybox, cms = _load(cs.compose_file("img")), _load(cs.compose_file(CMS_IMAGE, app="cms"))
    assert list(cms["services"]) == ["postgres", "redis", "storage", "backend"]
    for name in ("postgres", "redis"):
        assert cms["services"][name] == busybox["services"][name]
    backend = cms["services"]["backend"]
    assert backend["image"] == CMS_IMAGE and backend["ports"] == ["80:8000"]
    assert backend["environment"]["REDIS_URL"] == "redis://:${REDIS_PASSWORD}@redis:6379/0"
    assert set(cms["volumes"]) == {"pgdata", "redis_data", "s3_data"}
    # the S3 key pair reaches rclone through its environment, never argv
    script = cms["services"]["storage"]["command"][2]
    assert "RCLONE_AUTH_KEY=" in script and "--auth-key" not in script


def test_the_cms_env_file_holds_every_secret_the_stack_reads() -> None:
    keys = [line.split("=", 1)[0] for line in cs.cms_env_file(*SECRETS).splitlines()]
    assert keys == ["POSTGRES_PASSWORD", "REDIS_PASSWORD", "MINIO_ACCESS_KEY",
                    "MINIO_SECRET_KEY", "DJANGO_SECRET_KEY"]
    assert cms_app.SECRETS[2:] == ("s3_access_key", "s3_secret_key", "django_secret_key")


def test_hapair_recognises_the_cms_stack_and_repoints_its_backend(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(cs.compose_file(CMS_IMAGE, app="cms"))
    env = tmp_path / ".env.node1"
    env.write_text(cs.cms_env_file(*SECRETS))
    stack = discover_offline([compose], [env], cs.PROJECT)
    assert {(m.role, m.service) for m in stack.roles} == {
        ("postgres", "postgres"), ("redis", "redis"), ("backend", "backend")}
    edited = edit_compose_file(compose.read_text(), cs.COMPOSE_FILE, stack,
                               NodeEdit("node2", "10.99.0.12", False, ("node1", "node2")))
    backend = _load(edited.after)["services"]["backend"]
    assert backend["environment"]["POSTGRES_HOST"] == "hapair-router"
    assert backend["environment"]["POSTGRES_PORT"] == "5433"
    assert backend["environment"]["REDIS_URL"] == (
        "redis://:${REDIS_PASSWORD}@hapair-router:6380/0")
    assert backend["env_file"] == ".env.node2" and backend["depends_on"] == ["storage"]
    # the migrations left the start command for a one-shot service in its own profile
    assert backend["command"][2].startswith("exec gunicorn")
    migrate = _load(edited.after)["services"]["migrate"]
    assert migrate["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert migrate["profiles"] == ["migrate"]
    assert migrate["environment"]["POSTGRES_HOST"] == "hapair-router"


def test_the_cms_image_is_built_from_the_backend_s_own_files() -> None:
    files = cms_app.backend_files()
    assert "backend/manage.py" in files and "backend/articles/migrations/0001_initial.py" in files
    assert not any("__pycache__" in name for name in files)
    spec = cms_image(files)
    assert spec.names == (CMS_IMAGE,) and spec.files == files
    assert "COPY backend/ /app/" in spec.dockerfile
    with pytest.raises(ValueError, match="requirements.txt"):
        cms_image({"backend/gunicorn.conf.py": ""})


ACKS = [ArticleAck("1", "t1", "h1", 0.0, 0), ArticleAck("2", "t2", "h2", 0.0, 0),
        ArticleAck("3", "t3", "h3", 0.0, 1), ArticleAck("4", "t4", "h4", 0.0, 1)]


def test_article_problems_name_each_missing_or_different_article() -> None:
    rows = {"1": ("t1", "h1"), "2": ("other", "h2"), "3": ("t3", "changed")}
    assert cms_app.article_problems(ACKS, rows) == {
        "2": "title 'other' differs", "3": "body differs", "4": "missing"}
    assert cms_app.article_problems(ACKS[:1], rows) == {}


def _rec(op: str, start: float, ok: bool) -> RequestRecord:
    return RequestRecord(op, 0, start, start + 0.1, 201 if ok else 503,
                         None if ok else None, "" if ok else "HTTP 503")


def test_impact_counts_failures_and_finds_the_longest_run_per_op() -> None:
    records = [_rec("article.create", 100.0, True), _rec("session.write", 101.0, False),
               _rec("article.read", 102.0, True), _rec("session.write", 103.0, False),
               _rec("article.create", 104.0, False), _rec("session.write", 109.0, True),
               _rec("article.create", 110.0, True)]
    out = li.impact(records, t0=100.0)
    assert (out["requests"], out["failed"]) == (7, 3)
    assert out["failed_by_kind"] == {"http_5xx": 3}
    # across ops: 101 → 102 (a read answered), then 103 → 109; session.write alone: 101 → 109
    assert out["longest_failure_run"] == {"seconds": 6.0, "from_s": 3.0, "to_s": 9.0,
                                          "failures": 2, "recovered": True}
    assert out["longest_failure_run_of_one_op"]["seconds"] == 8.0
    assert out["longest_failure_run_by_op"]["article.read"] is None
    assert out["still_failing_at_end"] is None


def test_step_times_place_the_upgrade_s_steps_on_the_load_s_clock() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def at(s: float) -> str:
        return (t0 + timedelta(seconds=s)).isoformat()

    steps = [
        {"step": "upgrade-compose/node1/compose.backup", "host": "node1", "result": "ok",
         "start": at(1), "end": at(3)},
        {"step": "upgrade-compose/node1/compose.redis-handover", "host": "node1",
         "result": "ok", "start": at(40), "end": at(45.5)},
        {"step": "upgrade-compose/node1/compose.etcd", "host": "node1", "result": "skipped",
         "start": "", "end": ""},
        {"step": "upgrade-compose/node1/compose.app-repoint", "host": "node1",
         "result": "ok", "start": at(60), "end": at(71.25)},
    ]
    times = li.step_times(steps, t0)
    assert [t["step"] for t in times] == ["compose.backup", "compose.redis-handover",
                                          "compose.app-repoint"]
    assert times[1] == {"step": "compose.redis-handover", "host": "node1", "result": "ok",
                        "from_s": 40.0, "to_s": 45.5}
    assert li.handover(times) == {"from_s": 40.0, "to_s": 71.25, "seconds": 31.25}
    assert li.handover(times[:2]) is None
