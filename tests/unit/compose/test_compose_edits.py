"""Round-trip edits of the user's own compose file: comments and order survive, only the
intended lines change, edits are idempotent, and the diff and impact are shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from compose_fixtures import COMPOSE_FILE, ENV_FILE, golden

from hapair.compose.collect import discover_offline
from hapair.compose.edits import EditResult, NodeEdit, edit_compose_file, unified_diff
from hapair.compose.yamlio import dump_roundtrip, load_plain, load_roundtrip

ORIGINAL = COMPOSE_FILE.read_text()
NODE1 = NodeEdit("node1", "10.0.0.11", runs_scheduler=True)
NODE2 = NodeEdit("node2", "10.0.0.12", runs_scheduler=False, env_rename=("node1", "node2"))


def edit(node: NodeEdit, text: str = ORIGINAL) -> EditResult:
    stack = discover_offline([COMPOSE_FILE], [ENV_FILE])
    return edit_compose_file(text, "/opt/idp-cms/docker-compose.yml", stack, node)


def test_diffs_golden() -> None:
    golden("edit-node1.diff", edit(NODE1).diff())
    golden("edit-node2.diff", edit(NODE2).diff())


def test_comments_and_order_survive() -> None:
    after = edit(NODE1).after
    for comment in ("# idp-cms — production stack, single server (node1).",
                    "# Secrets live in .env.node1 (not in git).",
                    "  # --- data -----",
                    "  # --- application -----",
                    "# for the reporting tool on the office VPN",
                    "    # the config is generated at start so the password comes from the env "
                    "file"):
        assert comment in after, comment
    before_keys = list(load_plain(ORIGINAL)["services"])
    after_keys = list(load_plain(after)["services"])
    i = before_keys.index("authoring") + 1
    assert after_keys == [*before_keys[:i], "migrate", *before_keys[i:]]
    assert list(load_plain(after)["services"]["postgres"]) == [
        "image", "profiles", "restart", "stop_grace_period", "env_file", "environment",
        "volumes", "ports", "healthcheck", "networks"]
    assert list(load_plain(after)) == list(load_plain(ORIGINAL))


def test_untouched_lines_are_byte_identical() -> None:
    result = edit(NODE1)
    removed = [line for line in result.diff().splitlines()
               if line.startswith("-") and not line.startswith("---")]
    # every removed line is one an edit meant to change
    meant = ("restart: unless-stopped", "0.0.0.0:5432", "6379:6379", "9000:9000", "9001:9001",
             "manage.py migrate", "POSTGRES_HOST", "POSTGRES_PORT", "REDIS_URL", "postgres",
             "redis", "condition: service_", "depends_on:")
    assert all(any(key in line for key in meant) for line in removed), removed


def test_edits_are_idempotent() -> None:
    for node in (NODE1, NODE2):
        once = edit(node).after
        assert edit(node, once).after == once


def test_node1_keeps_the_scheduler_node2_does_not() -> None:
    n1 = load_plain(edit(NODE1).after)["services"]["celery-beat"]
    n2 = load_plain(edit(NODE2).after)["services"]["celery-beat"]
    assert "profiles" not in n1
    assert n2["profiles"] == ["scheduler"]
    assert "hapair: the scheduler runs on node1 only" in edit(NODE1).after


def test_migrate_becomes_a_one_shot_profile_service() -> None:
    services = load_plain(edit(NODE1).after)["services"]
    assert "migrate" not in services["authoring"]["command"]
    assert services["authoring"]["command"].startswith("sh -c 'python manage.py collectstatic")
    job = services["migrate"]
    assert job["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert job["profiles"] == ["migrate"]
    assert job["restart"] == "no"
    assert job["networks"] == ["cms"]  # no fixed address: it belongs to authoring
    assert job["image"] == services["authoring"]["image"]


def test_data_services_move_aside_for_hapair() -> None:
    services = load_plain(edit(NODE2).after)["services"]
    for name in ("postgres", "redis"):
        assert services[name]["profiles"] == ["single-node"]
        assert services[name]["restart"] == "no"  # a string, also for docker-compose v1
    assert services["postgres"]["stop_grace_period"] == "120s"
    assert services["postgres"]["ports"] == ["10.0.0.12:5432:5432"]
    assert services["minio"]["ports"] == ["10.0.0.12:9000:9000", "10.0.0.12:9001:9001"]
    assert services["authoring"]["depends_on"] == {"minio": {"condition": "service_healthy"}}
    assert "depends_on" not in services["celery-worker"]
    assert services["authoring"]["environment"]["POSTGRES_HOST"] == "hapair-router"
    assert services["authoring"]["environment"]["POSTGRES_PORT"] == "5433"
    assert services["celery-worker"]["environment"]["REDIS_URL"] == (
        "redis://:${REDIS_PASSWORD}@hapair-router:6380/0")
    assert services["authoring"]["env_file"] == ".env.node2"


def test_notes_and_impact() -> None:
    result = edit(NODE1)
    notes = [str(n) for n in result.notes]
    assert "postgres: 0.0.0.0:5432:5432 → 10.0.0.11:5432:5432 — published on every address " \
           "before (defect #26)" in notes
    assert any("DATABASE_URL from an env file: not edited" in n for n in notes)
    impact = result.impact_lines()
    assert "authoring: recreate (command, environment, depends_on)" in impact
    assert "minio: recreate (ports)" in impact
    assert "frontend" not in " ".join(impact)


def test_a_command_it_cannot_split_is_left_alone_with_a_note() -> None:
    text = ORIGINAL.replace(
        'command: sh -c "python manage.py migrate --noinput && python manage.py collectstatic '
        '--noinput && gunicorn',
        'command: sh -c "python manage.py migrate --noinput; gunicorn')
    result = edit(NODE1, text)
    assert "manage.py migrate --noinput; gunicorn" in result.after
    assert "migrate left in place" in " ".join(str(n) for n in result.notes)


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ('      - "5432:5432"\n', '      - "10.0.0.11:5432:5432"\n'),
        ("      - 5432:5432\n", "      - 10.0.0.11:5432:5432\n"),
        ("      - '127.0.0.1:5432:5432'\n", "      - '127.0.0.1:5432:5432'\n"),
        ("      - target: 5432\n        published: 5432\n",
         "      - target: 5432\n        published: 5432\n        host_ip: 10.0.0.11\n"),
    ],
)
def test_port_forms(ports: str, expected: str) -> None:
    text = ORIGINAL.replace('      - "0.0.0.0:5432:5432"   # for the reporting tool on the '
                            'office VPN\n', ports)
    assert expected in edit(NODE1, text).after


def test_other_indentation_styles_are_kept(tmp_path: Path) -> None:
    text = ("services:\n"
            "    db:\n"
            "        image: postgres:17\n"
            "        ports:\n"
            "        - 5432:5432   # keep me\n"
            "        volumes:\n"
            "        - pgdata:/var/lib/postgresql/data\n"
            "volumes:\n"
            "    pgdata:\n")
    doc, style = load_roundtrip(text)
    assert dump_roundtrip(doc, style) == text
    (tmp_path / "compose.yaml").write_text(text)
    stack = discover_offline([tmp_path / "compose.yaml"], project="p")
    result = edit_compose_file(text, "/x", stack, NODE1)
    changed = [line for line in result.diff().splitlines()[2:]
               if line[:1] in "+-" and not line.startswith("@@")]
    assert "+        - 10.0.0.11:5432:5432 # keep me" in changed  # same comment column
    assert "        image: postgres:17" in result.after
    assert list(load_plain(result.after)["services"]["db"]) == [
        "image", "profiles", "restart", "stop_grace_period", "ports", "volumes"]


def test_unified_diff_shape() -> None:
    assert unified_diff("a\nb\n", "a\nb\n", "x", "y") == ""
    assert unified_diff("a\nb\nc\n", "a\nB\nc\n", "a/f", "b/f") == (
        "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n")
