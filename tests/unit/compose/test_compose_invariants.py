"""Our invariant checks: each rule fails on the mistake it guards against (table-driven), and
passes on what hapair generates and on the user's file once edited."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from compose_fixtures import COMPOSE_FILE, ENV_FILE, generate_params

from hapair.compose.collect import discover_offline
from hapair.compose.edits import NodeEdit, edit_compose_file
from hapair.compose.generate import expectations, generate
from hapair.compose.generate_configs import postgres_uid
from hapair.compose.invariants import (
    Expect,
    active_services,
    check,
    check_scheduler_once,
    check_sentinel_config,
    load_project,
)
from hapair.compose.yamlio import dump_plain, load_plain

NODE1 = generate(generate_params())[0]
GOOD = load_plain(NODE1.text)


def mutated(change: Any) -> list[str]:
    doc = copy.deepcopy(GOOD)
    change(doc)
    project = load_project(dump_plain(doc), NODE1.project)
    return sorted({v.rule for v in check(project, expectations(NODE1))})


def svc(doc: dict, name: str) -> dict:
    return doc["services"][name]


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda d: svc(d, "hapair-patroni").update(ports=["0.0.0.0:5432:5432"]),
         "public-data-port"),
        (lambda d: svc(d, "hapair-redis").update(ports=["6379:6379"]), "public-data-port"),
        (lambda d: svc(d, "hapair-etcd").update(ports=["10.0.0.99:2379:2379"]),
         "port-not-private"),
        (lambda d: svc(d, "hapair-patroni").update(restart="always"), "resurrecting-restart"),
        (lambda d: svc(d, "hapair-patroni").update(stop_grace_period="30s"), "pg-stop-grace"),
        (lambda d: svc(d, "hapair-patroni").pop("stop_grace_period"), "pg-stop-grace"),
        (lambda d: svc(d, "hapair-patroni").pop("entrypoint"), "patroni-entrypoint"),
        (lambda d: d["volumes"]["pgdata"].pop("external"), "volume-replaced"),
        (lambda d: d["volumes"].update(pgdata={"external": True, "name": "idp-cms_pgdata2"}),
         "volume-replaced"),
        (lambda d: svc(d, "hapair-patroni").update(
            volumes=["fresh:/var/lib/postgresql/data"]) or d["volumes"].update(fresh={}),
         "volume-replaced"),
        (lambda d: svc(d, "hapair-sentinel").update(volumes=[
            "/opt/s/sentinel.conf:/etc/hapair-sentinel/sentinel.conf:ro"]), "sentinel-config"),
        (lambda d: svc(d, "hapair-sentinel").update(volumes=[
            "/opt/s/sentinel.conf:/etc/hapair-sentinel/sentinel.conf"]), "sentinel-config"),
        (lambda d: svc(d, "hapair-sentinel").update(volumes=[]), "sentinel-config"),
        (lambda d: svc(d, "hapair-sentinel").update(volumes=[
            "hapair_sentinel:/etc/hapair-sentinel:ro"]), "sentinel-config"),
        (lambda d: svc(d, "hapair-keepalived").pop("network_mode"), "keepalived-host"),
        (lambda d: svc(d, "hapair-keepalived").update(cap_add=["NET_RAW"]), "keepalived-host"),
    ],
)
def test_each_rule_catches_its_mistake(change: Any, rule: str) -> None:
    assert mutated(change) == [rule]


def test_unchanged_generated_file_passes() -> None:
    assert mutated(lambda d: None) == []


def user_expect() -> Expect:
    return Expect(data_services=frozenset({"postgres", "redis", "minio"}),
                  postgres=frozenset({"postgres"}))


def test_the_original_file_breaks_the_rules_the_defects_describe() -> None:
    project = load_project(COMPOSE_FILE.read_text(), "idp-cms")
    found = {(v.rule, v.service) for v in check(project, user_expect())}
    assert found == {
        ("public-data-port", "postgres"), ("public-data-port", "redis"),
        ("public-data-port", "minio"), ("resurrecting-restart", "postgres"),
        ("pg-stop-grace", "postgres"), ("migrate-on-start", "authoring"),
    }


def edited(node: str) -> str:
    stack = discover_offline([COMPOSE_FILE], [ENV_FILE])
    edit = NodeEdit("node1", "10.0.0.11", True) if node == "node1" else \
        NodeEdit("node2", "10.0.0.12", False, ("node1", "node2"))
    return edit_compose_file(COMPOSE_FILE.read_text(), "/x", stack, edit).after


def test_the_edited_file_passes() -> None:
    for node in ("node1", "node2"):
        project = load_project(edited(node), "idp-cms")
        assert check(project, user_expect()) == [], node


def test_patroni_and_plain_postgres_never_start_together_on_one_volume() -> None:
    # hapair's project is separate, but a merged file would be caught: both by default
    doc = load_plain(edited("node1"))
    doc["services"]["postgres"].pop("profiles")
    doc["services"]["hapair-patroni"] = GOOD["services"]["hapair-patroni"]
    project = load_project(dump_plain(doc), "idp-cms")
    rules = {v.rule for v in check(project, Expect(postgres=frozenset({"postgres"}),
                                                    patroni=frozenset({"hapair-patroni"})))}
    assert "shared-data-volume" in rules


def test_a_rollback_service_may_not_keep_a_restart_policy() -> None:
    doc = load_plain(edited("node1"))
    doc["services"]["postgres"]["restart"] = "always"
    project = load_project(dump_plain(doc), "idp-cms")
    assert [v.rule for v in check(project, user_expect())] == ["resurrecting-restart"]


def test_the_scheduler_runs_on_exactly_one_node() -> None:
    edited_nodes = {n: active_services(load_project(edited(n), "idp-cms"))
                    for n in ("node1", "node2")}
    assert check_scheduler_once(edited_nodes, "celery-beat") == []
    original = active_services(load_project(COMPOSE_FILE.read_text(), "idp-cms"))
    both = check_scheduler_once({"node1": original, "node2": original}, "celery-beat")
    assert [str(v) for v in both] == [
        "celery-beat: scheduler-once: starts by default on 2 nodes (node1, node2); exactly one "
        "must run it"]
    assert check_scheduler_once({"node1": [], "node2": []}, "celery-beat")[0].reason.startswith(
        "starts by default on 0 nodes")


def test_sentinel_announce_check() -> None:
    good = "port 26379\nsentinel announce-ip 10.0.0.11\nsentinel announce-port 26379\n"
    assert check_sentinel_config("s", good, "10.0.0.11", 26379) == []
    bad = check_sentinel_config("s", "port 26379\n", "10.0.0.11", 26379)
    assert [v.reason for v in bad] == ["missing `sentinel announce-ip 10.0.0.11`",
                                       "missing `sentinel announce-port 26379`"]


@pytest.mark.parametrize(("image", "uid"), [("postgres:17", "999"),
                                            ("postgres:17-alpine", "70"),
                                            ("registry:5000/postgres:16.4-alpine3.20", "70")])
def test_postgres_uid(image: str, uid: str) -> None:
    assert postgres_uid(image) == uid
