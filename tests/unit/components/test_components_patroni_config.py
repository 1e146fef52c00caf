import pytest
from ruamel.yaml import YAML

from hapair.components.common import Credential, Endpoint, Plain
from hapair.components.patroni import (
    PatroniNode,
    PatroniParams,
    PatroniTiming,
    check_timing,
    dynamic_config,
    failover_window,
    patroni_argv,
    pg_hba_lines,
    render_patroni_config,
    validate_config_argv,
)
from hapair.errors import UsageError

NODES = (PatroniNode("node1", "10.99.0.11"), PatroniNode("node2", "10.99.0.12"))
ETCD = tuple(Endpoint(f"10.99.0.1{i}", 2379) for i in (1, 2, 3))


def params(**kw: object) -> PatroniParams:
    base: dict[str, object] = dict(
        scope="cms", name="node1", nodes=NODES, etcd_hosts=ETCD,
        data_dir="/var/lib/postgresql/15/main", bin_dir="/usr/lib/postgresql/15/bin",
        superuser=Credential("postgres", Plain("su-secret")),
        replication=Credential("replicator", Plain("repl-secret")),
        app_user="cms", app_database="cms",
    )
    return PatroniParams(**{**base, **kw})  # type: ignore[arg-type]


def _load(text: str) -> dict:
    return YAML(typ="safe").load(text)


@pytest.mark.parametrize(
    ("timing", "ok", "reason"),
    [
        (PatroniTiming(20, 2, 6), True, "loop_wait + 2 x retry_timeout = 14 <= ttl 20 (6 s"),
        (PatroniTiming(30, 10, 10), True, "loop_wait + 2 x retry_timeout = 30 <= ttl 30 (0 s"),
        (PatroniTiming(20, 3, 9), False, "loop_wait + 2 x retry_timeout = 3 + 2 x 9 = 21 > ttl 20"),
        (PatroniTiming(10, 2, 4), False, "ttl=10 is below Patroni's minimum 20"),
        (PatroniTiming(20, 0, 5), False, "loop_wait=0 is below Patroni's minimum 1"),
        (PatroniTiming(20, 2, 2), False, "retry_timeout=2 is below Patroni's minimum 3"),
    ],
)
def test_timing_rule(timing: PatroniTiming, ok: bool, reason: str) -> None:
    check = check_timing(timing)
    assert check.ok is ok
    assert check.reason.startswith(reason)


def test_params_refuse_bad_timing() -> None:
    with pytest.raises(UsageError, match="patroni timing: ttl=10"):
        params(timing=PatroniTiming(10, 2, 4))


def test_failover_window_is_bound_by_ttl() -> None:
    best, worst = failover_window(PatroniTiming(20, 2, 6))
    assert (best, worst) == (19.5, 22.5)
    assert best > 10  # §6's 10 s cannot be met with Patroni's ttl floor of 20


def test_rendered_config_core_lines() -> None:
    f = render_patroni_config(params(rest_auth=Credential("patroni", Plain("rest-secret"))))
    assert (f.path, f.mode, f.owner, f.secret) == (
        "/etc/hapair/patroni.yml", 0o600, "postgres", True)
    assert f.content.startswith("# Patroni cms/node1 — rendered by hapair. Holds passwords")
    cfg = _load(f.content)
    assert cfg["scope"] == "cms" and cfg["name"] == "node1"
    assert cfg["restapi"]["listen"] == "10.99.0.11:8008"
    assert cfg["restapi"]["authentication"] == {"username": "patroni", "password": "rest-secret"}
    assert cfg["etcd3"] == {"hosts": ["10.99.0.11:2379", "10.99.0.12:2379", "10.99.0.13:2379"],
                            "protocol": "http"}
    pg = cfg["postgresql"]
    assert pg["listen"] == "127.0.0.1,10.99.0.11:5432"
    assert pg["connect_address"] == "10.99.0.11:5432"
    assert pg["data_dir"] == "/var/lib/postgresql/15/main"
    assert pg["authentication"]["superuser"] == {"username": "postgres", "password": "su-secret"}
    assert pg["authentication"]["replication"]["username"] == "replicator"
    assert pg["remove_data_directory_on_rewind_failure"] is False
    assert pg["remove_data_directory_on_diverged_timelines"] is False
    assert pg["create_replica_methods"] == ["basebackup"]
    assert cfg["watchdog"] == {"mode": "off"}


def test_bootstrap_never_runs_initdb() -> None:
    cfg = _load(render_patroni_config(params()).content)
    method = cfg["bootstrap"]["method"]
    assert method != "initdb" and "initdb" not in cfg["bootstrap"]
    assert cfg["bootstrap"][method] == {"command": "/bin/false", "no_params": True}


def test_dynamic_config_parameters() -> None:
    dcs = dynamic_config(params())
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == (20, 2, 6)
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["postgresql"]["use_slots"] is True
    assert dcs["check_timeline"] is True and dcs["failsafe_mode"] is True
    pgp = dcs["postgresql"]["parameters"]
    assert pgp["wal_log_hints"] == "on" and pgp["hot_standby"] == "on"
    assert pgp["max_slot_wal_keep_size"] == "4GB" and pgp["max_wal_senders"] == 10


@pytest.mark.parametrize(
    ("durability", "sync", "strict"),
    [("sync", True, False), ("strict", True, True), ("async", False, False)],
)
def test_durability_modes(durability: str, sync: bool, strict: bool) -> None:
    dcs = dynamic_config(params(durability=durability, maximum_lag_on_failover=4096))
    assert dcs["synchronous_mode"] is sync
    assert dcs["synchronous_mode_strict"] is strict
    assert dcs["maximum_lag_on_failover"] == 4096


def test_preserved_parameters_are_kept_but_ha_ones_win() -> None:
    pgp = dynamic_config(params(preserved_parameters=(
        ("max_connections", "200"), ("wal_log_hints", "off"))))["postgresql"]["parameters"]
    assert pgp["max_connections"] == "200"
    assert pgp["wal_log_hints"] == "on"


def test_pg_hba_only_peers_with_scram() -> None:
    lines = pg_hba_lines(params(extra_hba=("host cms cms 172.17.0.0/16 scram-sha-256",)))
    assert lines == [
        "local all postgres peer",
        "local all all scram-sha-256",
        "host all all 127.0.0.1/32 scram-sha-256",
        "host all all ::1/128 scram-sha-256",
        "host replication replicator 10.99.0.11/32 scram-sha-256",
        "host all postgres 10.99.0.11/32 scram-sha-256",
        "host cms cms 10.99.0.11/32 scram-sha-256",
        "host replication replicator 10.99.0.12/32 scram-sha-256",
        "host all postgres 10.99.0.12/32 scram-sha-256",
        "host cms cms 10.99.0.12/32 scram-sha-256",
        "host cms cms 172.17.0.0/16 scram-sha-256",
    ]
    assert not any(" md5" in line or " trust" in line or "0.0.0.0" in line for line in lines)


def test_yaml_safe_for_tricky_passwords() -> None:
    tricky = "yes: #'\"{x}"
    cfg = _load(render_patroni_config(
        params(superuser=Credential("postgres", Plain(tricky)))).content)
    assert cfg["postgresql"]["authentication"]["superuser"]["password"] == tricky


def test_secrets_not_in_repr() -> None:
    assert "su-secret" not in repr(params())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nodes": NODES[:1]}, "both data nodes"),
        ({"name": "node3"}, "not one of the nodes"),
        ({"etcd_hosts": ()}, "etcd endpoint"),
        ({"durability": "eventual"}, "durability"),
        ({"extra_hba": ("host all all 0.0.0.0/0 trust\nlocal all all trust",)}, "one non-empty"),
        ({"preserved_parameters": (("shared_buffers", "1 GB"),)}, "shared_buffers"),
    ],
)
def test_invalid_params(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        params(**kwargs)


def test_argv() -> None:
    p = params(config_path="/etc/patroni/cms.yml")
    assert patroni_argv(p) == ["patroni", "/etc/patroni/cms.yml"]
    assert validate_config_argv(p, "/opt/venv/bin/patroni") == [
        "/opt/venv/bin/patroni", "--validate-config", "--ignore-listen-port",
        "/etc/patroni/cms.yml"]
