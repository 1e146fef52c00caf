"""The lab's pure parts: configuration, command builders, parsers, renderers (table-driven).

Marked `lab` with the rest of tests/lab, but they need no root and build nothing.
"""

from __future__ import annotations

import ipaddress
import os
import stat
import subprocess
from pathlib import Path

import pytest

from hapair.errors import Refused, UsageError
from hapair.inventory.load import load_inventory
from hapair.lab import access, net, procs, venv
from hapair.lab import stack_render as r
from hapair.lab.config import LabConfig, config_from_env, overlapping_route, parse_subnet
from hapair.lab.layout import BIND_PATHS, boot_script, host_argv, nsenter_argv
from hapair.lab.state import HostState, LabState, load, save, set_service_address_owner

pytestmark = pytest.mark.lab

NET = ipaddress.IPv4Network("10.99.0.0/24")


def cfg_at(path: Path) -> LabConfig:
    return LabConfig(path, NET)


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        ("default via 192.0.2.1 dev eth0\n192.0.2.0/24 dev eth0 proto kernel", None),
        ("10.99.0.0/16 dev eth1 scope link", "10.99.0.0/16 dev eth1 scope link"),
        ("10.99.0.5 via 192.0.2.1 dev eth0", "10.99.0.5 via 192.0.2.1 dev eth0"),
        ("10.0.0.0/8 via 192.0.2.1 dev eth0", "10.0.0.0/8 via 192.0.2.1 dev eth0"),
        ("unreachable 10.99.0.128/25", "unreachable 10.99.0.128/25"),
        ("10.98.0.0/24 dev eth1\n10.100.0.0/24 dev eth2", None),
        ("10.99.0.0/24 dev hapair0 proto kernel scope link src 10.99.0.1", None),  # our own
    ],
)
def test_overlapping_route(routes: str, expected: str | None) -> None:
    assert overlapping_route(NET, routes) == expected


def test_addresses_follow_the_subnet() -> None:
    cfg = config_from_env({"HAPAIR_LAB_DIR": "/srv/lab/x", "HAPAIR_LAB_SUBNET": "172.31.7.0/24"})
    assert (cfg.controller_address, cfg.service_address) == ("172.31.7.1", "172.31.7.10")
    assert [(h.name, h.address, h.netns, h.veth) for h in cfg.hosts] == [
        ("node1", "172.31.7.11", "hapair-node1", "hp-node1"),
        ("node2", "172.31.7.12", "hapair-node2", "hp-node2"),
        ("witness", "172.31.7.13", "hapair-witness", "hp-witness"),
    ]
    assert cfg.front_door_url == "http://172.31.7.10/"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HAPAIR_LAB_SUBNET": "10.99.0.1/24"}, "not an IPv4 network"),
        ({"HAPAIR_LAB_SUBNET": "10.99.0.0/29"}, "too small"),
        ({"HAPAIR_LAB_DIR": "/"}, "absolute path two levels deep"),
        ({"HAPAIR_LAB_DIR": "lab"}, "absolute path two levels deep"),
    ],
)
def test_bad_settings_are_usage_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        config_from_env(env)


def test_unknown_host_names_the_valid_ones() -> None:
    with pytest.raises(UsageError, match="valid hosts: node1, node2, witness"):
        cfg_at(Path("/var/lib/x")).host("node3")
    assert parse_subnet("10.99.0.0/24") == NET


# -- how a host boots ---------------------------------------------------------------------------


def test_boot_script_mounts_then_execs_init() -> None:
    script = boot_script("/lab/hosts/node1/root", "node1").splitlines()
    assert script[0] == "set -e"
    binds = [ln for ln in script if ln.startswith("mount --bind")]
    assert binds == [f"mount --bind /lab/hosts/node1/root{hp.path} {hp.path}" for hp in BIND_PATHS]
    run_tmpfs = script.index("mount -t tmpfs -o mode=0755,nosuid,nodev,size=64m tmpfs /run")
    assert run_tmpfs < script.index("install -d -o root -g root -m 0755 /run/sshd")
    assert "install -d -o postgres -g postgres -m 2775 /run/postgresql" in script
    assert script[-2:] == [
        "hostname node1",
        "exec /usr/bin/supervisord -n -c /etc/supervisor/supervisord.conf",
    ]


def test_boot_script_quotes_paths() -> None:
    assert "mount --bind '/my lab/r/etc/ssh' /etc/ssh" in boot_script("/my lab/r", "node1")


def test_host_and_nsenter_argv() -> None:
    assert host_argv("hapair-node2", "S") == [
        "ip", "netns", "exec", "hapair-node2", "unshare", "--pid", "--fork", "--kill-child",
        "--mount", "--uts", "--ipc", "--propagation", "private", "--mount-proc", "sh", "-c", "S",
    ]  # fmt: skip
    assert nsenter_argv(4242) == [
        "nsenter", "--target=4242", "--net", "--pid", "--mount", "--uts", "--ipc", "--",
    ]  # fmt: skip


# -- network ------------------------------------------------------------------------------------


def test_power_on_restores_own_and_static_service_address() -> None:
    cfg = cfg_at(Path("/var/lib/x"))
    node1 = cfg.host("node1")
    with_sa = net.power_on_cmds(cfg, node1, service_address=True)
    assert with_sa[:3] == [
        ["ip", "-n", "hapair-node1", "addr", "flush", "dev", "eth0"],
        ["ip", "-n", "hapair-node1", "addr", "add", "10.99.0.11/24", "dev", "eth0"],
        ["ip", "-n", "hapair-node1", "addr", "add", "10.99.0.10/32", "dev", "eth0"],
    ]
    without = net.power_on_cmds(cfg, node1, service_address=False)
    assert not any("10.99.0.10/32" in argv for argv in without)
    assert without[-1] == ["ip", "link", "set", "hp-node1", "up"]


@pytest.mark.parametrize(
    ("peer", "rules"),
    [
        (None, [["-i", "eth0", "-j", "DROP"], ["-o", "eth0", "-j", "DROP"]]),
        (
            "10.99.0.12",
            [
                ["-i", "eth0", "-s", "10.99.0.12/32", "-j", "DROP"],
                ["-o", "eth0", "-d", "10.99.0.12/32", "-j", "DROP"],
            ],
        ),
    ],
)
def test_partition_rules(peer: str | None, rules: list[list[str]]) -> None:
    assert net.partition_rules(peer) == rules


@pytest.mark.parametrize(
    ("listing", "peers"),
    [
        ("-N HAPAIR-PARTITION\n", []),
        ("-N HAPAIR-PARTITION\n-A HAPAIR-PARTITION -i eth0 -j DROP\n"
         "-A HAPAIR-PARTITION -o eth0 -j DROP\n", ["all"]),
        ("-N HAPAIR-PARTITION\n-A HAPAIR-PARTITION -s 10.99.0.12/32 -i eth0 -j DROP\n"
         "-A HAPAIR-PARTITION -d 10.99.0.12/32 -o eth0 -j DROP\n", ["10.99.0.12"]),
    ],
)  # fmt: skip
def test_parse_partition_rules(listing: str, peers: list[str]) -> None:
    assert net.parse_partition_rules(listing) == peers


# -- /proc --------------------------------------------------------------------------------------


def test_parse_stat_handles_odd_comm() -> None:
    fields = " ".join(["S"] + [str(n) for n in range(4, 53)])
    comm, start = procs.parse_stat(f"123 (a) (b c) {fields}")
    assert (comm, start) == ("a) (b c", 22)


def test_fs_path_maps_through_the_mount_table() -> None:
    mountinfo = (
        "22 1 254:0 / / rw - ext4 /dev/vda rw\n40 22 254:16 /data /var/lib rw - ext4 /dev/vdb rw\n"
    )
    assert procs.fs_path(Path("/var/lib/hapair-lab"), mountinfo) == "/data/hapair-lab"
    assert procs.fs_path(Path("/srv/lab"), mountinfo) == "/srv/lab"


def test_own_process_is_the_same_process() -> None:
    me = os.getpid()
    assert procs.is_same_process(me, procs.start_time(me))
    assert not procs.is_same_process(me, (procs.start_time(me) or 0) + 1)


# -- state --------------------------------------------------------------------------------------


def test_state_round_trip_and_service_address_owner(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    st = LabState(
        str(tmp_path),
        "10.99.0.0/24",
        "hapair0",
        "10.99.0.1",
        "10.99.0.10",
        "node1",
        {"node1": HostState("node1", "10.99.0.11", "hapair-node1", 5, 77, "pid:[1]")},
    )
    save(path, st)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load(path) == st
    assert set_service_address_owner(path, None).service_address_owner is None
    with pytest.raises(UsageError, match="valid hosts: node1"):
        set_service_address_owner(path, "node9")
    with pytest.raises(Refused, match="lab up"):
        load(tmp_path / "missing.json")


# -- generated access and inventory ---------------------------------------------------------


def test_generated_inventory_loads_with_pinned_keys(tmp_path: Path) -> None:
    cfg = cfg_at(tmp_path)
    access.ensure_controller_key(cfg)
    secrets = access.ensure_secrets(cfg)
    assert access.ensure_secrets(cfg) == secrets  # kept, not regenerated
    for name in access.SECRET_SPECS:
        assert stat.S_IMODE((cfg.secrets_dir / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(cfg.ssh_key.stat().st_mode) == 0o600
    keys = {}
    for h in cfg.hosts:
        kf = tmp_path / f"hk-{h.name}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(kf)], check=True)
        keys[h.name] = " ".join(Path(f"{kf}.pub").read_text().split()[:2])
    cfg.inventory_file.write_text(access.render_inventory(access.inventory_data(cfg, keys)))
    inv = load_inventory(cfg.inventory_file)
    assert [(h.name, h.address, h.ssh.host_key) for h in inv.hosts] == [
        (h.name, h.address, keys[h.name]) for h in cfg.hosts
    ]


# -- the before stack's files -------------------------------------------------------------------

NODE = r.Node(address="10.99.0.11", service_address="10.99.0.10")
ROUTES = {k: list(v) for k, v in access.ROUTES.items()}


def test_route_table_longest_prefix_and_conflicts() -> None:
    table = {row["prefix"]: row["upstream"] for row in r.route_table(ROUTES)}
    assert table["/api/articles/"] == "backend" and table["/api/health"] == "frontend"
    assert table["/"] == "frontend" and table["/media/"] == "backend"
    with pytest.raises(ValueError, match="/api/x"):
        r.route_table({"backend": ["/api/x"], "frontend": ["/api/x"]})


def test_nginx_conf_listens_only_on_the_service_address() -> None:
    conf = r.nginx_conf(NODE, ROUTES)
    assert [ln.strip() for ln in conf.splitlines() if ln.strip().startswith("listen")] == [
        "listen 10.99.0.10:80 default_server;"
    ]
    for prefix in ROUTES["backend"]:
        assert f"location {prefix} {{\n            proxy_pass http://backend;" in conf
    assert "location /api/health {\n            proxy_pass http://frontend;" in conf
    assert "ip_hash" not in conf and "return 200" not in conf
    assert "client_max_body_size 64m;" in conf and "pid /run/nginx.pid;" in conf


def test_redis_conf() -> None:
    conf = r.redis_conf(NODE, "pw123")
    for line in ("bind 127.0.0.1 10.99.0.11", "protected-mode yes", "appendonly yes",
                 "requirepass pw123", "dir /var/lib/redis"):  # fmt: skip
        assert line in conf.splitlines()


def test_roles_sql_is_idempotent_and_carries_only_verifiers() -> None:
    sql = r.postgres_roles_sql("cms", "cms", "SCRAM-SHA-256$x", "SCRAM-SHA-256$y")
    assert "WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cms')\\gexec" in sql
    assert "ALTER ROLE \"cms\" LOGIN PASSWORD 'SCRAM-SHA-256$x';" in sql
    assert 'CREATE DATABASE "cms" OWNER "cms"\' WHERE NOT EXISTS' in sql


def test_env_file_round_trips_through_sh(tmp_path: Path) -> None:
    values = {"A": "plain", "B": "with space", "C": 'it\'s $HOME `x` "q"', "D": '"a,b"'}
    f = tmp_path / "e.env"
    f.write_text(r.env_file(values))
    out = subprocess.run(["sh", "-c", f"set -a; . {f}; printf '%s\\n' \"$A\" \"$B\" \"$C\" \"$D\""],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert out.splitlines() == list(values.values())


def test_no_secret_in_any_service_definition() -> None:
    secrets = {name: f"SECRET-{name}" for name in access.SECRET_SPECS}
    env = r.backend_env(NODE, secrets, ["10.99.0.10"])
    assert env["POSTGRES_PASSWORD"] == "SECRET-postgres_password"
    assert r.s3_env(secrets)["RCLONE_AUTH_KEY"] == '"SECRET-s3_access_key,SECRET-s3_secret_key"'
    specs = [r.postgres_spec(), r.redis_spec(), r.s3_spec(NODE), r.backend_spec(NODE),
             r.frontend_spec(NODE), r.nginx_spec()]  # fmt: skip
    for spec in specs:
        text = " ".join(spec.command) + repr(dict(spec.environment))
        assert "SECRET-" not in text, spec.name
    assert r.postgres_spec().stop_signal == "INT" and r.postgres_spec().stop_wait_secs == 60
    assert r.s3_spec(NODE).user == r.S3_USER and r.backend_spec(NODE).user == "www-data"


# -- the shared virtualenv's requirements ---------------------------------------------------


def test_requirement_files_follow_includes(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("django\n")
    top = tmp_path / "a.txt"
    top.write_text("patroni\n-r sub/b.txt  # the app\n")
    assert venv.requirement_files(top) == [top.resolve(), (tmp_path / "sub" / "b.txt").resolve()]
    before = venv.requirements_hash(top)
    (tmp_path / "sub" / "b.txt").write_text("django==5.2\n")
    assert venv.requirements_hash(top) != before  # an included file's change rebuilds the venv
    (tmp_path / "sub" / "b.txt").unlink()
    with pytest.raises(UsageError, match="b.txt is missing"):
        venv.requirement_files(top)


def test_shipped_requirements_include_the_cms() -> None:
    names = [p.name for p in venv.requirement_files(venv.REQUIREMENTS)]
    assert names == ["host-requirements.txt", "requirements.txt"]
