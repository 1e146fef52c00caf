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
    ("writer local", {"local": N1, "peer": N2, "writer": "local"}),
    ("writer peer", {"local": N2, "peer": N1, "writer": "peer"}),
    ("ipv6 peer, no worker user, no access log",
     {"local": N1, "peer": V6, "writer": "peer", "worker_user": None, "access_log": "off"}),
    ("file access log", {"local": N1, "peer": N2, "writer": "local",
                         "access_log": "TMP/access.log s3route"}),
]


@pytest.mark.skipif(not os.path.exists(NGINX), reason="needs nginx")
@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_nginx_accepts(tmp_path: Path, name: str, kw: dict[str, object]) -> None:
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    conf = tmp_path / "router.conf"
    kw = {k: v.replace("TMP", str(tmp_path)) if isinstance(v, str) else v for k, v in kw.items()}
    p = RouterParams(node="node1", prefix=str(prefix), config_path=str(conf), nginx=NGINX,
                     port=18849, **kw)  # type: ignore[arg-type]
    conf.write_text(render_router_conf(p))
    result = subprocess.run(config_test_argv(p), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not os.path.exists(NGINX), reason="needs nginx")
def test_nginx_rejects_a_broken_candidate(tmp_path: Path) -> None:
    # The check really runs nginx on the candidate file: a broken one fails.
    p = RouterParams(node="node1", local=N1, peer=N2, writer="local", prefix=str(tmp_path),
                     config_path=str(tmp_path / "router.conf"), nginx=NGINX)
    bad = tmp_path / "router.conf.new"
    bad.write_text(render_router_conf(p).replace("proxy_pass http://s3_peer;", "proxy_pass;"))
    result = subprocess.run(config_test_argv(p, str(bad)), capture_output=True, text=True,
                            timeout=30)
    assert result.returncode != 0
    assert "proxy_pass" in result.stderr
