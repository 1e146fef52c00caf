"""Rendered configs checked by the real programs (haproxy -c, nginx -t, keepalived -t),
plus one broken variant each, to show the validator really rejects what is wrong."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from hapair.components.common import Endpoint, Plain, RenderedFile
from hapair.components.http_lb import (
    HaproxyLbParams,
    HttpNode,
    NginxLbParams,
    RouteTable,
    nginx_test_argv,
    render_haproxy_lb_config,
    render_nginx_config,
)
from hapair.components.keepalived import (
    KeepalivedParams,
    config_test_argv,
    render_check_scripts,
    render_keepalived_config,
)
from hapair.components.router import (
    RouterBackend,
    RouterParams,
    RouterS3,
    RouterSentinel,
    check_config_argv,
    render_router_config,
)


def _skip_without(*binaries: str) -> pytest.MarkDecorator:
    missing = [b for b in binaries if shutil.which(b) is None]
    return pytest.mark.skipif(bool(missing), reason=f"not installed: {missing}")


ROUTES = RouteTable(("/health/", "/api/articles/", "/admin/"), ("/api/health", "/"))
NODES = (HttpNode("node1", "10.99.0.11"), HttpNode("node2", "10.99.0.12"))
BACKENDS = (RouterBackend("node1", "10.99.0.11"), RouterBackend("node2", "10.99.0.12"))


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def _broken(f: RenderedFile, old: str, new: str) -> RenderedFile:
    assert old in f.content
    return replace(f, content=f.content.replace(old, new, 1))


@_skip_without("haproxy")
@pytest.mark.parametrize("variant", ["sentinel", "no-sentinel", "s3-and-node-address"])
def test_router_config_is_valid_haproxy(variant: str, workdir: Path,
                                        write_file: Callable[..., Path]) -> None:
    extra: dict[str, object] = {}
    if variant == "sentinel":
        extra["sentinel"] = RouterSentinel(Endpoint("127.0.0.1", 18522), "cms-cache", Plain("s"))
    if variant == "s3-and-node-address":
        extra["s3"] = RouterS3(18535, (("node1", Endpoint("10.99.0.11", 9000)),))
        extra["listen_addresses"] = ("127.0.0.1", "10.99.0.11")
    params = RouterParams("node1", BACKENDS, Plain('p a"s\\s'), pg_port=18531, redis_port=18530,
                          config_path=f"{workdir}/router.cfg",
                          stats_socket=f"{workdir}/router.sock", user=None, group=None, **extra)
    path = write_file(render_router_config(params))
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    result = run(check_config_argv(str(path)))
    assert result.returncode == 0, result.stdout + result.stderr
    bad = write_file(_broken(render_router_config(params), "http-check expect status 200",
                             "http-check expect stat 200"))
    assert run(check_config_argv(str(bad))).returncode != 0


@_skip_without("haproxy")
def test_http_lb_haproxy_is_valid(workdir: Path, write_file: Callable[..., Path]) -> None:
    params = HaproxyLbParams("node1", NODES, ROUTES, listen="127.0.0.1", port=18551,
                             config_path=f"{workdir}/lb.cfg", stats_socket=f"{workdir}/lb.sock",
                             user=None, group=None)
    result = run(check_config_argv(str(write_file(render_haproxy_lb_config(params)))))
    assert result.returncode == 0, result.stdout + result.stderr
    bad = write_file(_broken(render_haproxy_lb_config(params), "{ path_beg", "{ path_begin"))
    assert run(check_config_argv(str(bad))).returncode != 0


@_skip_without("nginx")
def test_http_lb_nginx_is_valid(workdir: Path, write_file: Callable[..., Path]) -> None:
    params = NginxLbParams("node1", NODES, ROUTES, listen="127.0.0.1", port=18550,
                           config_path=f"{workdir}/nginx.conf", pid_path=f"{workdir}/nginx.pid",
                           temp_dir=str(workdir), user=None)
    path = write_file(render_nginx_config(params))
    result = run(nginx_test_argv(str(path), prefix=str(workdir)))
    assert result.returncode == 0, result.stderr
    bad = write_file(_broken(render_nginx_config(params), "max_fails=1", "max_fails=one"))
    assert run(nginx_test_argv(str(bad), prefix=str(workdir))).returncode != 0


def _vrrp_interface() -> str | None:
    """keepalived -t insists on an existing, non-loopback interface."""
    names = sorted(p.name for p in Path("/sys/class/net").iterdir() if p.name != "lo")
    return names[0] if names else None


@_skip_without("keepalived")
@pytest.mark.skipif(_vrrp_interface() is None, reason="no non-loopback interface")
@pytest.mark.parametrize("eligibility", ["etcd_quorum", "witness_tcp"])
def test_keepalived_config_is_valid(eligibility: str, workdir: Path,
                                    write_file: Callable[..., Path]) -> None:
    params = KeepalivedParams(
        "node1", "10.99.0.11", ("10.99.0.12",), "10.99.0.10", 24, str(_vrrp_interface()), 150, 51,
        Plain("front-door"), eligibility=eligibility,  # type: ignore[arg-type]
        witness=Endpoint("127.0.0.1", 18502), config_path=f"{workdir}/keepalived.conf",
        script_dir=f"{workdir}/scripts")
    for script in render_check_scripts(params):
        write_file(script)
    path = write_file(render_keepalived_config(params))
    result = run(config_test_argv(str(path)))
    assert result.returncode == 0, result.stdout + result.stderr
    bad = write_file(_broken(render_keepalived_config(params), "auth_type PASS", "auth_type PASSX"))
    assert run(config_test_argv(str(bad))).returncode != 0
