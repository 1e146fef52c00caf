"""Pure decisions of the rollback: target choice, restored files, address adaptation, the
boot-time address file, Redis config, leftovers, /health/ reading."""

from __future__ import annotations

import pytest

from hapair.components.patroni.probe import Member
from hapair.workflows.rollback import model as m


def member(name: str, role: str, state: str = "running") -> Member:
    return Member(name=name, role=role, state=state)


@pytest.mark.parametrize(("members", "wanted", "node", "reason"), [
    ([member("node1", "leader"), member("node2", "sync_standby", "streaming")], None, "node1",
     "node1 is the PostgreSQL leader"),
    ([member("node1", "sync_standby", "streaming"), member("node2", "leader")], None, "node2",
     "node2 is the PostgreSQL leader"),
    ([member("node1", "replica", "streaming"), member("node2", "replica", "stopped")], None,
     None, "no PostgreSQL leader"),
    ([], None, None, "no PostgreSQL leader"),
    ([member("node1", "leader"), member("node2", "leader")], None, None,
     "more than one PostgreSQL leader (node1, node2)"),
    ([member("node1", "leader", "stopped")], None, None, "the leader node1 is stopped"),
    ([member("node1", "leader"), member("node2", "replica", "streaming")], "node2", None,
     "--to node2: the data is on node1"),
    ([member("node1", "leader"), member("node2", "replica", "streaming")], "node1", "node1",
     "node1 is the PostgreSQL leader"),
])
def test_choose_target(members: list[Member], wanted: str | None, node: str | None,
                       reason: str) -> None:
    t = m.choose_target(members, wanted)
    assert t.node == node
    assert t.reason.startswith(reason)


def test_restore_files_without_and_with_redis() -> None:
    files = m.restore_files("/var/lib/postgresql/15/main/", "/etc/redis/redis.conf",
                            "/etc/nginx/nginx.conf", "/etc/supervisor/conf.d", with_redis=False)
    assert [(f.member, f.dest, f.mode, f.owner) for f in files] == [
        ("/var/lib/postgresql/15/main/postgresql.conf",
         "/var/lib/postgresql/15/main/postgresql.conf", 0o600, "postgres:postgres"),
        ("/var/lib/postgresql/15/main/pg_hba.conf", "/var/lib/postgresql/15/main/pg_hba.conf",
         0o600, "postgres:postgres"),
        ("/var/lib/postgresql/15/main/postgresql.auto.conf",
         "/var/lib/postgresql/15/main/postgresql.auto.conf", 0o600, "postgres:postgres"),
        ("/etc/supervisor/conf.d/postgres.conf", "/etc/supervisor/conf.d/postgres.conf", 0o600,
         "root"),
        ("/etc/nginx/nginx.conf", "/etc/nginx/nginx.conf", 0o644, "root"),
    ]
    with_redis = m.restore_files("/d", "/etc/redis/redis.conf", "/n", "/s", with_redis=True)
    assert with_redis[-1] == m.RestoreFile("/etc/redis/redis.conf", "/etc/redis/redis.conf",
                                           0o640, "redis:redis")
    assert m.archive_member("/etc/redis/redis.conf") == "etc/redis/redis.conf"


@pytest.mark.parametrize(("text", "want"), [
    ("listen_addresses = 'localhost,10.99.0.11'\n", "listen_addresses = 'localhost,10.99.0.12'\n"),
    ("bind 127.0.0.1 10.99.0.11\n", "bind 127.0.0.1 10.99.0.12\n"),
    ("server 10.99.0.111:80; 110.99.0.11\n", "server 10.99.0.111:80; 110.99.0.11\n"),
    ("10.99.0.11:8000 and 10.99.0.11\n", "10.99.0.12:8000 and 10.99.0.12\n"),
])
def test_adapt_replaces_whole_addresses_only(text: str, want: str) -> None:
    assert m.adapt(text, "10.99.0.11", "10.99.0.12") == want
    assert m.adapt(text, "10.99.0.11", "10.99.0.11") == text


@pytest.mark.parametrize(("text", "want"), [
    ("", "# addresses configured at boot\n10.99.0.10/32\n"),
    ("# addresses configured at boot (hapair lab)\n",
     "# addresses configured at boot (hapair lab)\n10.99.0.10/32\n"),
    ("# boot\n10.99.0.10/32\n", "# boot\n10.99.0.10/32\n"),
    ("10.99.0.10/32", "10.99.0.10/32\n"),
    ("# 10.99.0.10/32 commented out\n", "# 10.99.0.10/32 commented out\n10.99.0.10/32\n"),
    ("10.99.0.100/32\n", "10.99.0.100/32\n10.99.0.10/32\n"),
])
def test_with_static_address(text: str, want: str) -> None:
    assert m.with_static_address(text, "10.99.0.10") == want
    assert m.has_static_address(want, "10.99.0.10")


def test_without_static_address_keeps_the_rest() -> None:
    text = "# boot\n10.99.0.10/32\n10.99.0.100/32\n"
    out = m.without_static_address(text, "10.99.0.10")
    assert out == "# boot\n10.99.0.100/32\n"
    assert not m.has_static_address(out, "10.99.0.10")
    assert m.without_static_address("", "10.99.0.10") == ""


def test_redis_replicaof_lines() -> None:
    conf = "bind 127.0.0.1\n# replicaof 1.2.3.4 6379\nreplicaof 10.99.0.11 6379\nSLAVEOF x 1\n"
    assert m.redis_replicaof_lines(conf) == ["replicaof 10.99.0.11 6379", "SLAVEOF x 1"]
    assert m.redis_replicaof_lines("requirepass x\nappendonly yes\n") == []


def test_patroni_slot_name() -> None:
    assert m.patroni_slot_name("node2") == "node2"
    assert m.patroni_slot_name("Node-2.example") == "node_2_example"


def test_leftovers() -> None:
    statuses = [("etcd", "RUNNING"), ("patroni", "STOPPED"), ("nginx", "RUNNING"),
                ("sentinel", "BACKOFF"), ("sshd", "RUNNING"), ("router", "FATAL")]
    assert m.leftovers(statuses, m.PAIR_PROGRAMS) == ["etcd", "sentinel"]
    assert m.leftovers(statuses, m.PAIR_PROGRAMS + m.PEER_PROGRAMS) == ["etcd", "nginx",
                                                                        "sentinel"]


@pytest.mark.parametrize(("status", "body", "problems"), [
    (200, {"checks": {"database": {"ok": True}, "redis": {"ok": True},
                      "storage": {"ok": True}}}, []),
    (503, {"checks": {"database": {"ok": False, "error": "down"}, "redis": {"ok": True},
                      "storage": {"ok": True}}},
     ["HTTP 503", "database: {'ok': False, 'error': 'down'}"]),
    (200, {"checks": {"database": {"ok": True}, "redis": {"ok": True}}}, ["storage: None"]),
    (200, "not json", ["no checks in the answer"]),
])
def test_health_failures(status: int, body: object, problems: list[str]) -> None:
    assert m.health_failures(status, body) == problems


def test_upgrade_archive_name() -> None:
    assert m.upgrade_archive_name("20261126T040000Z-abc123") == \
        "upgrade.rolled-back-20261126T040000Z-abc123"


def test_keepalive_off_goes_first_in_the_http_block() -> None:
    conf = "events {\n}\n\nhttp {\n    access_log off;\n}\n"
    assert m.keepalive_off(conf, "keepalive_timeout 0;") == (
        "events {\n}\n\nhttp {\n    keepalive_timeout 0;\n    access_log off;\n}\n")
    with pytest.raises(ValueError, match="no `http {` line"):
        m.keepalive_off("events {}\n", "keepalive_timeout 0;")


def test_missing_members() -> None:
    listing = "etc/nginx/\netc/nginx/nginx.conf\nvar/lib/postgresql/15/main/pg_hba.conf\n"
    assert m.missing_members(listing, ["/etc/nginx/nginx.conf",
                                       "/var/lib/postgresql/15/main/pg_hba.conf",
                                       "/etc/redis/redis.conf"]) == ["/etc/redis/redis.conf"]
    assert m.missing_members("", ["/a"]) == ["/a"]
