"""The write selector (HAProxy): writes go to the site whose node answers GET /primary."""

import pytest

from hapair.components.storage.site import Site
from hapair.components.storage.writer import (
    PROGRAM,
    WriterParams,
    WriteTarget,
    check_argv,
    config_dir_argv,
    reload_argv,
    render_writer_conf,
    writer_conf_file,
    writer_spec,
)
from hapair.errors import UsageError

T1 = WriteTarget(Site("node1", "10.99.0.11"), "10.99.0.11")
T2 = WriteTarget(Site("node2", "10.99.0.12"), "10.99.0.12")


def params(**kw: object) -> WriterParams:
    base: dict[str, object] = {"node": "node2", "targets": (T1, T2)}
    return WriterParams(**{**base, **kw})  # type: ignore[arg-type]


def section(text: str, opener: str) -> list[str]:
    """The stripped, non-comment lines of a HAProxy section, up to the next blank line."""
    lines = [ln.strip() for ln in text.splitlines()]
    out = []
    for ln in lines[lines.index(opener):]:
        if not ln:
            break
        if not ln.startswith("#"):
            out.append(ln)
    return out


@pytest.mark.parametrize(
    ("kw", "servers"),
    [
        ({}, ["server node1 10.99.0.11:9000 check addr 10.99.0.11 port 8008",
              "server node2 10.99.0.12:9000 check addr 10.99.0.12 port 8008",
              # no site selected (before Patroni, an election): the node's own site
              "server node2-fallback 10.99.0.12:9000 backup"]),
        # loopback tests: sites and Patroni stand-ins on other ports
        ({"targets": (WriteTarget(Site("a", "127.0.0.1", 47001), "127.0.0.1", 47021),
                      WriteTarget(Site("b", "127.0.0.1", 47002), "127.0.0.1", 47022)),
          "port": 47011},
         ["server a 127.0.0.1:47001 check addr 127.0.0.1 port 47021",
          "server b 127.0.0.1:47002 check addr 127.0.0.1 port 47022"]),
    ],
)
def test_listen_section_picks_by_patroni_primary(kw: dict[str, object],
                                                 servers: list[str]) -> None:
    p = params(**kw)
    text = render_writer_conf(p)
    assert section(text, "listen s3_write") == [
        "listen s3_write",
        f"bind 127.0.0.1:{p.port}",
        "balance first",
        "option httpchk",
        "http-check send meth GET uri /primary",
        "http-check expect status 200",
        *servers,
    ]


def test_the_config_does_not_depend_on_who_writes() -> None:
    """Both nodes render the same selection: the choice is made at run time by Patroni; only
    the fallback (each node's own site) differs."""
    def selection(node: str) -> list[str]:
        return [ln for ln in render_writer_conf(params(node=node)).splitlines()[1:]
                if "-fallback " not in ln]

    assert selection("node1") == selection("node2")
    assert "server node2-fallback 10.99.0.12:9000 backup" in render_writer_conf(
        params(node="node2"))


def test_defaults_and_health_timing() -> None:
    lines = [ln.strip() for ln in render_writer_conf(params()).splitlines()]
    for expected in [
        "mode http",
        "default-server inter 1000ms fastinter 500ms downinter 1000ms fall 2 rise 2 "
        "on-marked-down shutdown-sessions",
        "timeout client 300s",
        "timeout server 300s",
        "stats socket /run/hapair-s3-writer.sock mode 600 level admin",
        "user haproxy",
        "group haproxy",
    ]:
        assert expected in lines, expected
    no_drop = render_writer_conf(params(drop_to=None))
    assert "user haproxy" not in no_drop


def test_argv_spec_file() -> None:
    p = params(config_path="/etc/h/writer.cfg")
    assert check_argv(p) == ["/usr/sbin/haproxy", "-c", "-q", "-f", "/etc/h/writer.cfg"]
    assert check_argv(p, "/etc/h/writer.cfg.new")[-1] == "/etc/h/writer.cfg.new"
    assert reload_argv(123) == ["kill", "-USR2", "123"]
    assert config_dir_argv(p) == ["install", "-d", "-m", "0755", "/etc/h", "/run"]
    spec = writer_spec(p)
    assert (spec.name, spec.command, spec.stop_signal) == (
        PROGRAM, ("/usr/sbin/haproxy", "-W", "-db", "-f", "/etc/h/writer.cfg"), "USR1")
    f = writer_conf_file(p)
    assert (f.path, f.mode, f.secret) == ("/etc/h/writer.cfg", 0o644, False)
    assert p.hostport == "127.0.0.1:9011"
    assert T1.primary_url == "http://10.99.0.11:8008/primary"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"targets": (T1,)}, "both sites"),
        ({"targets": (T1, T1)}, "writer sites"),
        ({"listen": "localhost"}, "listen"),
        ({"port": 0}, "port"),
        ({"config_path": "rel"}, "config_path"),
        ({"inter_ms": 0}, "inter_ms"),
    ],
)
def test_params_reject(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        params(**kwargs)


def test_target_rejects_a_name() -> None:
    with pytest.raises(UsageError, match="patroni address"):
        WriteTarget(Site("node1", "10.99.0.11"), "node1")
