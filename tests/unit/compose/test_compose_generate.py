"""Generated compose files for node1, node2 and the witness from the original deployment."""

from __future__ import annotations

import dataclasses
import re

import pytest
from compose_fixtures import HA_SECRETS, generate_params, golden

from hapair.compose.generate import check_bundle, generate
from hapair.compose.model import Mount, VersionFact
from hapair.compose.yamlio import load_plain
from hapair.errors import UsageError


@pytest.fixture(scope="module")
def bundles():  # (node1, node2, witness)
    return generate(generate_params())


def files_of(bundle) -> dict[str, object]:
    return {f.path.removeprefix(bundle.directory() + "/"): f for f in bundle.files}


def test_compose_files_golden(bundles) -> None:
    for bundle in bundles:
        golden(f"generated-{bundle.host.name}.yml", bundle.text)


def test_every_bundle_passes_our_invariants(bundles) -> None:
    for bundle in bundles:
        assert check_bundle(bundle) == [], bundle.host.name


def test_patroni_reuses_the_existing_volume_on_node1(bundles) -> None:
    node1, node2, _ = bundles
    for bundle in (node1, node2):
        doc = bundle.compose
        assert doc["volumes"]["pgdata"] == {"external": True, "name": "idp-cms_pgdata"}
        mount = doc["services"]["hapair-patroni"]["volumes"][0]
        assert mount == {"type": "volume", "source": "pgdata",
                         "target": "/var/lib/postgresql/data"}
    assert (node1.pg_volume, node1.pg_volume_exists) == ("idp-cms_pgdata", True)
    assert node2.pg_volume_exists is False
    assert "reused as it is: external" in node1.text
    assert "Created EMPTY by hapair" in node2.text


def test_patroni_image_is_built_from_the_stacks_postgres_major(bundles) -> None:
    dockerfile = files_of(bundles[0])["patroni/Dockerfile"].content
    assert re.search(r"(?m)^FROM postgres:17$", dockerfile)
    assert "pip install --no-cache-dir 'patroni[etcd3,psycopg3]==4.1.5'" in dockerfile
    patroni = bundles[0].compose["services"]["hapair-patroni"]
    assert patroni["image"] == "hapair/patroni:pg17"
    assert patroni["entrypoint"] == ["/opt/patroni/bin/patroni", "/etc/hapair/patroni.yml"]
    assert patroni["restart"] == "unless-stopped"
    assert patroni["stop_grace_period"] == "120s"


def test_patroni_config(bundles) -> None:
    f = files_of(bundles[1])["patroni/patroni.yml"]
    assert (f.mode, f.owner, f.secret) == (0o600, "999", True)
    conf = load_plain(f.content)
    pg = conf["postgresql"]
    assert pg["listen"] == "0.0.0.0:5432"
    assert pg["connect_address"] == "10.0.0.12:5432"
    assert pg["data_dir"] == "/var/lib/postgresql/data/pgdata"
    assert pg["bin_dir"] == "/usr/lib/postgresql/17/bin"
    assert "host idp_cms idp 172.28.0.0/16 scram-sha-256" in pg["pg_hba"]
    # Patroni's own replication connection, from the container's loopback (seen failing on
    # a real engine without it: the hand-over never reached /primary)
    assert "host replication replicator 127.0.0.1/32 scram-sha-256" in pg["pg_hba"]
    # psql in the container as OS user postgres reaches the image's superuser (no password)
    assert pg["pg_hba"][0] == "local all idp peer map=hapair"
    assert pg["pg_ident"] == ["hapair postgres idp"]
    assert conf["restapi"]["listen"] == "0.0.0.0:8008"
    assert conf["restapi"]["connect_address"] == "10.0.0.12:8008"
    assert conf["etcd3"]["hosts"] == ["10.0.0.11:2379", "10.0.0.12:2379", "10.0.0.13:2379"]
    assert conf["bootstrap"]["hapair_adopt_or_clone_only"]["command"] == "/bin/false"


def test_redis_and_sentinel_configs(bundles) -> None:
    node1, node2, witness = (files_of(b) for b in bundles)
    assert "replicaof" not in node1["redis/redis.conf"].content
    assert "replicaof 10.0.0.11 6379" in node2["redis/redis.conf"].content
    for files, address in ((node1, "10.0.0.11"), (node2, "10.0.0.12"), (witness, "10.0.0.13")):
        conf = files["sentinel/sentinel.conf"]
        assert (conf.mode, conf.secret) == (0o600, True)
        assert f"sentinel announce-ip {address}\n" in conf.content
        assert "sentinel announce-port 26379\n" in conf.content
        assert "sentinel monitor idp-cms-cache 10.0.0.11 6379 2\n" in conf.content
        assert re.findall(r"(?m)^bind .*$", conf.content) == ["bind 0.0.0.0"]


def test_data_ports_are_bound_to_the_private_address(bundles) -> None:
    for bundle in bundles:
        for name, svc in bundle.compose["services"].items():
            for port in svc.get("ports", []):
                assert port.startswith(bundle.host.address + ":"), (name, port)
        assert "0.0.0.0:" not in "\n".join(
            line for line in bundle.text.splitlines() if line.strip().startswith("- "))


def test_secrets_stay_in_0600_files(bundles) -> None:
    for bundle in bundles:
        assert not any(s in bundle.text for s in HA_SECRETS)
        for f in bundle.files:
            if any(s in f.content for s in HA_SECRETS):
                assert f.secret and f.mode == 0o600, f.path


def test_witness_has_no_data(bundles) -> None:
    witness = bundles[2].compose
    assert set(witness["services"]) == {"hapair-etcd", "hapair-sentinel"}
    assert "pgdata" not in witness["volumes"]


def test_keepalived_only_with_a_vip(bundles) -> None:
    keep = bundles[0].compose["services"]["hapair-keepalived"]
    assert keep["network_mode"] == "host"
    assert "NET_ADMIN" in keep["cap_add"]
    conf = files_of(bundles[0])["keepalived/keepalived.conf"].content
    assert "priority 150" in conf and "unicast_peer" in conf and "10.0.0.12" in conf
    assert "priority 100" in files_of(bundles[1])["keepalived/keepalived.conf"].content
    no_vip = generate(generate_params(vip=False))
    assert "hapair-keepalived" not in no_vip[0].compose["services"]


def test_router_joins_the_apps_network(bundles) -> None:
    doc = bundles[0].compose
    assert doc["networks"]["app"] == {"external": True, "name": "idp-cms_cms"}
    assert doc["services"]["hapair-router"]["networks"] == ["app"]
    cfg = files_of(bundles[0])["router/haproxy.cfg"]
    assert (cfg.mode, cfg.secret) == (0o600, True)
    assert "10.0.0.11:5432" in cfg.content and "10.0.0.12:5432" in cfg.content


def test_refuses_postgres_without_a_named_volume() -> None:
    p = generate_params()
    pg = p.stack.project.services["postgres"]
    services = dict(p.stack.project.services)
    anonymous = (Mount("volume", "/var/lib/postgresql/data"),)
    services["postgres"] = dataclasses.replace(pg, mounts=anonymous)
    stack = dataclasses.replace(p.stack, project=dataclasses.replace(p.stack.project,
                                                                     services=services))
    with pytest.raises(UsageError, match="outside a named volume"):
        generate(dataclasses.replace(p, stack=stack))


def test_refuses_an_unknown_major() -> None:
    p = generate_params()
    versions = {"postgres": VersionFact("postgres", "latest", None, "image tag", False)}
    with pytest.raises(UsageError, match="major"):
        generate(dataclasses.replace(p, stack=dataclasses.replace(p.stack, versions=versions)))


def test_hosts_must_differ() -> None:
    p = generate_params()
    with pytest.raises(UsageError, match="distinct"):
        dataclasses.replace(p, witness=p.nodes[0])
