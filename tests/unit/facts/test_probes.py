import pytest

from hapair.facts import probes
from hapair.facts.probes import Listener


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", 15),
        ("postgres (PostgreSQL) 17.2\n", 17),
        ("postgres (PostgreSQL) 9.6.24\n", 9),
        ("bash: postgres: command not found\n", None),
        ("", None),
    ],
)
def test_parse_pg_major(output: str, major: int | None) -> None:
    assert probes.parse_pg_major(output) == major


@pytest.mark.parametrize(("output", "major"), [("15\n", 15), ("", None), ("garbage", None)])
def test_parse_pg_data_dir(output: str, major: int | None) -> None:
    assert probes.parse_pg_data_dir(output) == major


def test_pg_data_dir_argv_passes_path_as_argument_not_in_script() -> None:
    argv = probes.pg_data_dir_argv("/var/lib/postgresql/15/main; rm -rf /")
    assert argv[-1] == "/var/lib/postgresql/15/main; rm -rf /"
    assert "rm -rf" not in argv[2]


def test_parse_df_available() -> None:
    out = (
        "Filesystem        1-blocks        Used    Available Capacity Mounted on\n"
        "/dev/vda      270580584448 23622320128 85899345920      22% /\n"
    )
    assert probes.parse_df_available(out) == 85899345920
    assert probes.parse_df_available("") is None


def test_parse_du_and_clock() -> None:
    assert probes.parse_du_bytes("41234432\t/var/lib/postgresql/15/main\n") == 41234432
    assert probes.parse_du_bytes("du: cannot access") is None
    assert probes.parse_clock("1764119000.123456789\n") == pytest.approx(1764119000.123456789)
    assert probes.parse_clock("Thu Nov 26") is None


SS_OUTPUT = """\
LISTEN 0      244        127.0.0.1:5432       0.0.0.0:*
LISTEN 0      244      10.99.0.11:5432       0.0.0.0:*
LISTEN 0      511       10.99.0.10:80         0.0.0.0:*
LISTEN 0      128          0.0.0.0:22         0.0.0.0:*
LISTEN 0      128             [::]:2379          [::]:*
LISTEN 0      128   [fe80::1%eth0]:9000          [::]:*
"""


def test_parse_listeners() -> None:
    got = probes.parse_listeners(SS_OUTPUT)
    assert got == (
        Listener("127.0.0.1", 5432),
        Listener("10.99.0.11", 5432),
        Listener("10.99.0.10", 80),
        Listener("0.0.0.0", 22),
        Listener("::", 2379),
        Listener("fe80::1", 9000),
    )


@pytest.mark.parametrize(
    ("address", "port", "taken_by"),
    [
        ("10.99.0.11", 5432, Listener("10.99.0.11", 5432)),
        ("10.99.0.12", 5432, None),  # same port, other address: free
        ("10.99.0.11", 22, Listener("0.0.0.0", 22)),  # wildcard listener collides
        ("10.99.0.11", 2379, Listener("::", 2379)),
        ("0.0.0.0", 80, Listener("10.99.0.10", 80)),  # wildcard bind collides with any
        ("10.99.0.11", 8008, None),
    ],
)
def test_port_taken(address: str, port: int, taken_by: Listener | None) -> None:
    assert probes.port_taken(probes.parse_listeners(SS_OUTPUT), address, port) == taken_by
