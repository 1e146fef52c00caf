"""Which service changes recreate a container: table-driven."""

from __future__ import annotations

import pytest

from hapair.compose.recreate import Change, changes, effect_of, recreates

BASE = {
    "image": "postgres:17",
    "command": ["postgres"],
    "environment": {"A": "1"},
    "ports": ["5432:5432"],
    "volumes": ["pgdata:/var/lib/postgresql/data"],
    "networks": {"cms": {"ipv4_address": "172.28.0.10"}},
    "restart": "unless-stopped",
    "depends_on": ["etcd"],
}


@pytest.mark.parametrize(
    ("field", "new", "effect"),
    [
        ("image", "postgres:17.2", "recreate"),
        ("command", ["postgres", "-c", "wal_level=replica"], "recreate"),
        ("entrypoint", ["patroni"], "recreate"),
        ("environment", {"A": "2"}, "recreate"),
        ("env_file", [".env.node2"], "recreate"),
        ("ports", ["10.0.0.11:5432:5432"], "recreate"),
        ("volumes", ["other:/var/lib/postgresql/data"], "recreate"),
        ("networks", {"cms": None}, "recreate"),
        ("network_mode", "host", "recreate"),
        ("restart", "no", "recreate"),
        ("stop_grace_period", "120s", "recreate"),
        ("healthcheck", {"test": ["CMD", "true"]}, "recreate"),
        ("labels", {"x": "y"}, "recreate"),
        ("user", "postgres", "recreate"),
        ("cap_add", ["NET_ADMIN"], "recreate"),
        ("profiles", ["single-node"], "no restart"),
        ("depends_on", [], "no restart"),
        ("build", {"context": "."}, "no restart"),
        ("pull_policy", "always", "no restart"),
        ("scale", 2, "no restart"),
        ("x-hapair", {"owner": "hapair"}, "no restart"),
    ],
)
def test_one_field(field: str, new: object, effect: str) -> None:
    found = changes(BASE, {**BASE, field: new})
    assert [(c.field, c.effect) for c in found] == [(field, effect)]
    assert found[0].reason  # always a one-line reason
    assert "\n" not in found[0].reason


@pytest.mark.parametrize(
    ("field", "same"),
    [
        ("ports", [{"target": 5432, "published": "5432", "protocol": "tcp"}]),
        ("volumes", [{"type": "volume", "source": "pgdata", "target": "/var/lib/postgresql/data"}]),
        ("environment", ["A=1"]),
        ("command", "postgres"),
        ("networks", {"cms": {"ipv4_address": "172.28.0.10", "aliases": []}}),
        ("depends_on", {"etcd": {"condition": "service_started"}}),
        ("restart", "unless-stopped"),
    ],
)
def test_the_same_value_in_another_syntax_is_no_change(field: str, same: object) -> None:
    assert changes(BASE, {**BASE, field: same}) == []


def test_added_and_removed_fields_count() -> None:
    old = {"image": "a"}
    new = {"image": "a", "stop_grace_period": "60s"}
    assert [c.field for c in changes(old, new)] == ["stop_grace_period"]
    assert [c.field for c in changes(new, old)] == ["stop_grace_period"]


def test_deploy_replicas_alone_is_not_a_recreate() -> None:
    old = {"deploy": {"replicas": 1, "resources": {"limits": {"cpus": "1"}}}}
    assert changes(old, {"deploy": {"replicas": 2, "resources": {"limits": {"cpus": "1"}}}}) == [
        Change("deploy.replicas", "no restart",
               "adds or removes containers; existing ones are kept")]
    both = changes(old, {"deploy": {"replicas": 2, "resources": {"limits": {"cpus": "2"}}}})
    assert [(c.field, c.effect) for c in both] == [("deploy.replicas", "no restart"),
                                                   ("deploy", "recreate")]


def test_recreates_and_order() -> None:
    new = {**BASE, "profiles": ["x"], "ports": ["10.0.0.11:5432:5432"]}
    assert recreates(BASE, new)
    assert not recreates(BASE, {**BASE, "profiles": ["x"]})
    assert [c.field for c in changes(BASE, {"profiles": ["x"], **BASE, "image": "b"})] == [
        "profiles", "image"]


def test_effect_of_unknown_field_is_a_recreate() -> None:
    assert effect_of("sysctls").effect == "recreate"
    assert str(effect_of("profiles")) == (
        "profiles: no restart (only decides whether `up` starts it; not part of the config "
        "hash)")
