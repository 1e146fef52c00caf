"""Compose's short and long syntaxes → one form: table-driven."""

from __future__ import annotations

import pytest

from hapair.compose import normalize as n
from hapair.compose.model import Mount, NetworkAttachment, PortBinding, parse_duration


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("5432", [PortBinding(5432)]),
        (5432, [PortBinding(5432)]),
        ("5432:5432", [PortBinding(5432, "5432")]),
        ("0.0.0.0:5432:5432", [PortBinding(5432, "5432", "0.0.0.0")]),
        ("10.0.0.11:5433:5432", [PortBinding(5432, "5433", "10.0.0.11")]),
        ("127.0.0.1::5432", [PortBinding(5432, "", "127.0.0.1")]),
        ("[::1]:6379:6379", [PortBinding(6379, "6379", "::1")]),
        ("53:53/udp", [PortBinding(53, "53", "", "udp")]),
        ("8000-8001:9000-9001", [PortBinding(9000, "8000"), PortBinding(9001, "8001")]),
        ({"target": 5432, "published": "5432", "host_ip": "0.0.0.0", "protocol": "tcp",
          "mode": "ingress"}, [PortBinding(5432, "5432", "0.0.0.0")]),
        ({"target": 80, "published": 8080}, [PortBinding(80, "8080")]),
        ({"target": 80}, [PortBinding(80)]),
    ],
)
def test_ports(entry: object, expected: list[PortBinding]) -> None:
    assert n.parse_port(entry) == expected


@pytest.mark.parametrize("entry", ["a:b", "1:2:3:4", "5432/icmp", "9000-9001:9000", "[::1:5432"])
def test_bad_ports(entry: str) -> None:
    with pytest.raises(ValueError):
        n.parse_port(entry)


def test_port_on_all_addresses() -> None:
    assert PortBinding(5432, "5432").on_all_addresses
    assert PortBinding(5432, "5432", "0.0.0.0").on_all_addresses
    assert PortBinding(5432, "5432", "::").on_all_addresses
    assert not PortBinding(5432, "5432", "10.0.0.11").on_all_addresses
    assert PortBinding(5432, "5432", "10.0.0.11").short() == "10.0.0.11:5432:5432/tcp"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("pgdata:/var/lib/postgresql/data", Mount("volume", "/var/lib/postgresql/data", "pgdata")),
        ("./nginx/conf.d:/etc/nginx/conf.d:ro", Mount("bind", "/etc/nginx/conf.d",
                                                      "/opt/app/nginx/conf.d", True)),
        ("/srv/x:/x:rw,z", Mount("bind", "/x", "/srv/x", False)),
        ("/data", Mount("volume", "/data")),
        ({"type": "volume", "source": "pgdata", "target": "/d", "volume": {}},
         Mount("volume", "/d", "pgdata")),
        ({"type": "bind", "source": "./c", "target": "/c", "read_only": True},
         Mount("bind", "/c", "/opt/app/c", True)),
        ({"type": "tmpfs", "target": "/run"}, Mount("tmpfs", "/run")),
    ],
)
def test_mounts(entry: object, expected: Mount) -> None:
    assert n.parse_mount(entry, "/opt/app") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {}),
        (["A=1", "B", "C=x=y"], {"A": "1", "B": None, "C": "x=y"}),
        ({"A": 1, "B": None, "C": True, "D": "d"}, {"A": "1", "B": None, "C": "true", "D": "d"}),
    ],
)
def test_environment(value: object, expected: dict[str, str | None]) -> None:
    assert n.parse_environment(value) == expected


def test_networks_both_forms() -> None:
    assert n.parse_networks(["cms"]) == (NetworkAttachment("cms"),)
    assert n.parse_networks({"cms": {"ipv4_address": "172.28.0.10", "aliases": ["db"]},
                             "other": None}) == (
        NetworkAttachment("cms", "172.28.0.10", ("db",)), NetworkAttachment("other"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("celery -A config beat", ("celery", "-A", "config", "beat")),
        ('sh -c "a && b"', ("sh", "-c", "a && b")),
        (["npm", "run", "start"], ("npm", "run", "start")),
    ],
)
def test_command(value: object, expected: tuple[str, ...] | None) -> None:
    assert n.parse_command(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"test": "pg_isready"}, ("CMD-SHELL", "pg_isready")),
        ({"test": ["CMD", "curl", "-f", "http://x/"]}, ("CMD", "curl", "-f", "http://x/")),
        ({"test": ["NONE"]}, None),
        ({"disable": True}, None),
        (None, None),
    ],
)
def test_healthcheck(value: object, expected: tuple[str, ...] | None) -> None:
    assert n.parse_healthcheck(value) == expected


def test_env_files_forms() -> None:
    assert n.parse_env_files(".env") == (".env",)
    assert n.parse_env_files([".a", {"path": ".b", "required": False}]) == (".a", ".b")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("60s", 60.0), ("1m30s", 90.0), ("1m0s", 60.0), ("2m", 120.0), ("500ms", 0.5),
     (90, 90.0), ("90", 90.0), ("1h", 3600.0), (None, None)],
)
def test_durations(value: object, seconds: float | None) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "10 s", "s", "1x"])
def test_bad_durations(value: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)
