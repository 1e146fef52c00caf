"""The compose lab tests get a BARE lab of their own, per module (hosts only: no native
single-server stack on node1; the stacks here run in Docker engines on the hosts). It
overrides the session `lab` of tests/lab/conftest.py, and is down before the next module's.

Then, per module, as a module asks for them: the images in each host's engine (`engines`),
the single-server stack on node1 with rows and a Redis key (`single_server`), its inventory
(`inventory`) and `hapair upgrade --experimental-compose` run over it (`upgraded`)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import compose_pair as cp
import compose_stack as cs
import engines as eng
import pytest
from lab_helpers import REPO, Lab, fresh_lab, hapair
from ruamel.yaml import YAML

from hapair.lab.transport import LabHostTransport

sys.path.insert(0, str(REPO / "tests" / "integration" / "compose"))
import image_kit  # noqa: E402
import private_engine  # noqa: E402


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    with fresh_lab(request.session, "compose", bare=True) as lab:
        yield lab


@pytest.fixture(scope="module")
def image_cache() -> None:
    """Every image built (or found) in the kit's cache, in a private engine that has network."""
    for why in (private_engine.available(), image_kit.available()):
        if why is not None:
            pytest.skip(why)
    with private_engine.private_engine() as uri:
        image_kit.ensure_images(uri, names=cp.NODE_IMAGES, extra=(cp.PATRONI,))


@pytest.fixture(scope="module")
def engines(lab: Lab, image_cache: None) -> Iterator[dict[str, str]]:
    uris = eng.start_engines(lab, cp.HOSTS, iptables=True)
    try:
        for host, uri in uris.items():
            image_kit.ensure_images(uri, names=cp.WITNESS_IMAGES if host == "witness"
                                    else cp.NODE_IMAGES, extra=(cp.PATRONI,))
        for host in ("node1", "node2"):
            eng.import_busybox(uris[host])
        yield uris
    finally:
        eng.stop_engines(lab, cp.HOSTS)


@pytest.fixture(scope="module")
def single_server(lab: Lab, engines: dict[str, str]) -> None:
    """The stack up on node1 (docker-compose run on the host, as its admin would), rows and a
    Redis key written to it."""
    t = LabHostTransport("node1", lab.cfg.lab_dir)
    t.run(["mkdir", "-p", cs.APP_DIR])
    t.write_file(cs.COMPOSE_FILE, cs.compose_file(eng.IMAGE), mode=0o644)
    t.write_file(f"{cs.APP_DIR}/.env.node1", cs.env_file(
        cp.secret(lab, "postgres_password"), cp.secret(lab, "redis_password")), mode=0o600)
    lab.sh("node1", f"cd {cs.APP_DIR} && docker-compose -p {cs.PROJECT} up -d")

    def writable() -> bool:
        with cp.pg(lab, "node1") as c:
            c.execute("CREATE TABLE IF NOT EXISTS before_upgrade (id int PRIMARY KEY, v text)")
            return True

    cp.wait("PostgreSQL answers on node1", writable)
    with cp.pg(lab, "node1") as c:
        c.execute("INSERT INTO before_upgrade SELECT g, md5(g::text) FROM "
                  "generate_series(1, %s) g ON CONFLICT DO NOTHING", (cp.ROWS,))
    # the password on stdin, never in argv
    out = t.run(["docker-compose", "-p", cs.PROJECT, "-f", cs.COMPOSE_FILE, "--env-file",
                 f"{cs.APP_DIR}/.env.node1", "exec", "-T", "redis", "redis-cli"],
                input=f"AUTH {cp.secret(lab, 'redis_password')}\nSET before-upgrade kept\n")
    assert out.stdout.split() == ["OK", "OK"], out.stdout


@pytest.fixture(scope="module")
def inventory(lab: Lab) -> Path:
    yaml = YAML(typ="safe", pure=True)
    data = cs.compose_inventory(yaml.load(lab.cfg.inventory_file.read_text()),
                                lab.address("node1"))
    path = lab.cfg.lab_dir / "compose-inventory.yaml"  # beside the key and secrets it names
    with path.open("w") as fh:
        yaml.dump(data, fh)
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def upgraded(single_server: None, inventory: Path, engines: dict[str, str]) -> dict:
    res = hapair("upgrade", "-i", str(inventory), "-y", "--experimental-compose", "-o", "json",
                 timeout=cp.UPGRADE_TIMEOUT)
    assert res.returncode == 0, res.stderr[-6000:] + cp.container_logs(engines)
    return json.loads(res.stdout)


