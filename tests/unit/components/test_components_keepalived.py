from pathlib import Path

import pytest

from hapair.components.common import Endpoint, Plain
from hapair.components.keepalived import (
    KeepalivedParams,
    check_single_holder,
    config_test_argv,
    default_vrid,
    keepalived_argv,
    parse_holds_vip,
    render_check_scripts,
    render_keepalived_config,
    vip_probe_argv,
    vrrp_password,
)
from hapair.errors import UsageError


def params(**kw: object) -> KeepalivedParams:
    base: dict[str, object] = dict(
        node_name="node1", address="10.99.0.11", peers=("10.99.0.12",), vip="10.99.0.10",
        prefix=24, interface="eth0", priority=150, vrid=51, secret=Plain("front-door-secret"))
    return KeepalivedParams(**{**base, **kw})  # type: ignore[arg-type]


def stripped(text: str) -> list[str]:
    stripped_lines = (ln.strip() for ln in text.splitlines())
    return [ln for ln in stripped_lines if ln and not ln.startswith("#")]


def test_vrrp_instance() -> None:
    f = render_keepalived_config(params())
    assert (f.path, f.mode, f.secret) == ("/etc/keepalived/keepalived.conf", 0o600, True)
    lines = stripped(f.content)
    start = lines.index("vrrp_instance hapair_front {")
    assert lines[start:start + 22] == [
        "vrrp_instance hapair_front {",
        "state BACKUP",
        "nopreempt",
        "interface eth0",
        "virtual_router_id 51",
        "priority 150",
        "advert_int 1",
        "unicast_src_ip 10.99.0.11",
        "unicast_peer {",
        "10.99.0.12",
        "}",
        "authentication {",
        "auth_type PASS",
        f"auth_pass {vrrp_password(Plain('front-door-secret'))}",
        "}",
        "virtual_ipaddress {",
        "10.99.0.10/24 dev eth0",
        "}",
        "track_script {",
        "hapair_eligible",
        "hapair_http_lb",
        "}",
    ]
    assert "enable_script_security" in lines
    assert 'script "/etc/keepalived/hapair/check-eligible"' in lines
    assert "front-door-secret" not in f.content


def test_vrrp_password_is_8_chars_and_stable() -> None:
    a = vrrp_password(Plain("a very long secret indeed"))
    assert len(a) == 8 and a == vrrp_password(Plain("a very long secret indeed"))
    assert a != vrrp_password(Plain("another secret"))
    assert 1 <= default_vrid("cms") <= 255 and default_vrid("cms") == default_vrid("cms")


def test_scripts_etcd_quorum_default() -> None:
    eligible, http = render_check_scripts(params())
    assert (eligible.path, eligible.mode, eligible.owner) == (
        "/etc/keepalived/hapair/check-eligible", 0o755, "root")
    assert eligible.content.splitlines()[-1] == (
        "exec /usr/bin/etcdctl --endpoints=http://127.0.0.1:2379 --dial-timeout=1s "
        "--command-timeout=1s endpoint health >/dev/null 2>&1")
    assert http.content.splitlines()[-1] == (
        "exec curl -fsS -o /dev/null --max-time 2 -H 'Host: 10.99.0.10' "
        "'http://127.0.0.1:80/health/' 2>/dev/null")


def test_scripts_witness_tcp() -> None:
    p = params(eligibility="witness_tcp", witness=Endpoint("10.99.0.13", 2379), http_port=8080,
               http_host="www.example.org")
    eligible, http = render_check_scripts(p)
    assert eligible.content.startswith("#!/bin/bash\n")
    assert "timeout 1 bash -c 'exec 3<>/dev/tcp/10.99.0.13/2379'" in eligible.content
    assert "-H 'Host: www.example.org' 'http://127.0.0.1:8080/health/'" in http.content
    assert "interval 1" in render_keepalived_config(p).content


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"eligibility": "witness_tcp"}, "witness: needed"),
     ({"vip": "10.99.0.11"}, "must all differ"),
     ({"priority": 255}, "1-254"), ({"vrid": 0}, "1-255"), ({"prefix": 33}, "1-32"),
     ({"peers": ()}, "other node"), ({"interface": "eth0 ; x"}, "interface")],
)
def test_invalid(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        params(**kwargs)


def test_argv() -> None:
    assert keepalived_argv(params()) == [
        "keepalived", "--dont-fork", "--log-console", "--vrrp", "-f",
        "/etc/keepalived/keepalived.conf"]
    assert config_test_argv("/k.conf") == ["keepalived", "--config-test", "-f", "/k.conf"]


DATA = Path(__file__).parent / "data" / "keepalived"


def test_vip_probe_and_holder_check() -> None:
    assert vip_probe_argv("eth0") == ["ip", "-o", "addr", "show", "dev", "eth0"]
    on1 = parse_holds_vip((DATA / "ip_addr_with_vip.txt").read_text(), "10.99.0.10")
    on2 = parse_holds_vip((DATA / "ip_addr_without_vip.txt").read_text(), "10.99.0.10")
    assert (on1, on2) == (True, False)  # 10.99.0.100 is not 10.99.0.10
    assert check_single_holder({"node1": on1, "node2": on2}, "10.99.0.10").reason == (
        "VIP 10.99.0.10 is on node1")
    assert "split brain" in check_single_holder({"a": True, "b": True}, "v").reason
    assert "front door is down" in check_single_holder({"a": False, "b": False}, "v").reason
