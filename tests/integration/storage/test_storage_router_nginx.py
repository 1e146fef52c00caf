"""Every router config variant passes a real `nginx -t` (temp prefix, pid and temp paths)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hapair.components.storage.router import RouterParams, config_test_argv, render_router_conf
from hapair.components.storage.site import Site

NGINX = "/usr/sbin/nginx"
N1 = Site("node1", "10.99.0.11")
N2 = Site("node2", "10.99.0.12")
V6 = Site("node2", "fd00::12", 9100)

VARIANTS = [
    ("node1", {"local": N1, "peer": N2}),
    ("node2, selector elsewhere", {"local": N2, "peer": N1, "write_to": "127.0.0.1:17021"}),
    ("ipv6 peer, no worker user, no access log",
     {"local": N1, "peer": V6, "worker_user": None, "access_log": "off"}),
    ("file access log", {"local": N1, "peer": N2, "access_log": "TMP/access.log s3route"}),
]


@pytest.mark.skipif(not os.path.exists(NGINX), reason="needs nginx")
@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_nginx_accepts(tmp_path: Path, name: str, kw: dict[str, object]) -> None:
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    conf = tmp_path / "router.conf"
    kw = {k: v.replace("TMP", str(tmp_path)) if isinstance(v, str) else v for k, v in kw.items()}
    p = RouterParams(node="node1", prefix=str(prefix), config_path=str(conf), nginx=NGINX,
                     port=17049, **kw)  # type: ignore[arg-type]
    conf.write_text(render_router_conf(p))
    result = subprocess.run(config_test_argv(p), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not os.path.exists(NGINX), reason="needs nginx")
def test_nginx_rejects_a_broken_candidate(tmp_path: Path) -> None:
    # The check really runs nginx on the candidate file: a broken one fails.
    p = RouterParams(node="node1", local=N1, peer=N2, prefix=str(tmp_path),
                     config_path=str(tmp_path / "router.conf"), nginx=NGINX)
    bad = tmp_path / "router.conf.new"
    bad.write_text(render_router_conf(p).replace("proxy_pass http://s3_peer;", "proxy_pass;"))
    result = subprocess.run(config_test_argv(p, str(bad)), capture_output=True, text=True,
                            timeout=30)
    assert result.returncode != 0
    assert "proxy_pass" in result.stderr


HAPROXY = "/usr/sbin/haproxy"


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="needs haproxy")
@pytest.mark.parametrize("drop_to", ["haproxy", None])
def test_haproxy_accepts_the_write_selector(tmp_path: Path, drop_to: str | None) -> None:
    from hapair.components.storage.writer import (
        WriterParams,
        WriteTarget,
        check_argv,
        render_writer_conf,
    )
    p = WriterParams("node1", (WriteTarget(N1, N1.address), WriteTarget(N2, N2.address)),
                     config_path=str(tmp_path / "writer.cfg"), port=17048,
                     stats_socket=str(tmp_path / "w.sock"), drop_to=drop_to)
    (tmp_path / "writer.cfg").write_text(render_writer_conf(p))
    result = subprocess.run(check_argv(p), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr + result.stdout
