"""`hapair inventory check` through the real console script (main()'s error handling)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ENV, SECRET_VALUES, dump, good_data, set_path

from hapair.cli.inventory import render_lines, summarize
from hapair.inventory import load_inventory

HAPAIR = Path(sys.executable).with_name("hapair")


def hapair(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # The caller's HAPAIR_INVENTORY must not leak into a test that does not set it.
    base = {k: v for k, v in os.environ.items() if k != "HAPAIR_INVENTORY"}
    full_env = {**base, **ENV, **(env or {})}
    return subprocess.run(
        [str(HAPAIR), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60
    )


def no_secret_in(*texts: str) -> None:
    for text in texts:
        for value in SECRET_VALUES:
            assert value not in text


def test_valid_inventory_table(inv_dir: Path) -> None:
    r = hapair("inventory", "check", "-i", "inventory.yaml", cwd=inv_dir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "inventory.yaml: valid"
    assert "  node2    10.99.0.12  node        compose     ssh deploy@10.99.0.12:2222" in r.stdout
    assert "  services.postgres.superuser_password  env:HAPAIR_TEST_PG_SUPERUSER" in r.stdout
    assert r.stderr == ""
    no_secret_in(r.stdout, r.stderr)


def test_valid_inventory_json(inv_dir: Path) -> None:
    r = hapair("inventory", "check", "-i", "inventory.yaml", "-o", "json", cwd=inv_dir)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # exactly one document: json.loads refuses trailing data
    assert doc["valid"] is True and doc["durability"] == "sync"
    assert [h["name"] for h in doc["hosts"]] == ["node1", "node2", "witness"]
    assert doc["hosts"][2]["roles"] == ["witness", "lb"]
    assert doc["services"]["postgres"]["port"] == 5432
    assert doc["services"]["postgres"]["password"] == "***"
    assert doc["secrets"]["services.postgres.password"] == {
        "value": "***",
        "ref": "file:secrets/pg",
    }
    assert doc["secrets"]["services.postgres.superuser_password"]["ref"] == (
        "env:HAPAIR_TEST_PG_SUPERUSER"
    )
    assert doc["warnings"] == []
    no_secret_in(r.stdout, r.stderr)


def test_no_witness_warning_is_shown(inv_dir: Path) -> None:
    data = good_data()
    del data["hosts"][2]
    dump(data, inv_dir / "inventory.yaml")
    r = hapair("inventory", "check", "-i", "inventory.yaml", cwd=inv_dir)
    assert r.returncode == 0
    assert "  no witness: automatic failover is off; manual failover only" in r.stdout
    r = hapair("inventory", "check", "-i", "inventory.yaml", "-o", "json", cwd=inv_dir)
    assert json.loads(r.stdout)["warnings"] == [
        "no witness: automatic failover is off; manual failover only"
    ]


@pytest.mark.parametrize("output", ["table", "json"])
def test_invalid_inventory_is_one_line_and_exit_2(inv_dir: Path, output: str) -> None:
    data = good_data()
    set_path(data, "hosts[1].address", "10.0.0.999")
    dump(data, inv_dir / "inventory.yaml")
    r = hapair("inventory", "check", "-i", "inventory.yaml", "-o", output, cwd=inv_dir)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        "hapair: inventory.yaml: hosts[1].address: '10.0.0.999' is not a valid IP address"
    ]
    assert "Traceback" not in r.stderr


def test_unresolvable_secret_names_the_reference_key(inv_dir: Path) -> None:
    r = hapair(
        "inventory",
        "check",
        "-i",
        "inventory.yaml",
        cwd=inv_dir,
        env={"HAPAIR_TEST_PG_SUPERUSER": ""},
    )
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "hapair: inventory.yaml: services.postgres.superuser_password:"
        " environment variable HAPAIR_TEST_PG_SUPERUSER is empty"
    ]


def test_missing_file(tmp_path: Path) -> None:
    r = hapair("inventory", "check", "-i", "nope.yaml", cwd=tmp_path)
    assert (r.returncode, r.stderr.splitlines()) == (2, ["hapair: nope.yaml: file not found"])


def test_inventory_from_environment(inv_dir: Path) -> None:
    r = hapair("inventory", "check", cwd=inv_dir, env={"HAPAIR_INVENTORY": "inventory.yaml"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("inventory.yaml: valid\n")


def test_render_lines(inv_dir: Path) -> None:
    lines = render_lines(summarize(load_inventory("inventory.yaml", env=ENV)))
    assert lines == [
        "inventory.yaml: valid",
        "cluster     shop",
        "durability  sync",
        "front door  vip 10.99.0.10:80 on eth0",
        "hosts",
        "  node1    10.99.0.11  node        supervisor  ssh root@10.99.0.11:22",
        "  node2    10.99.0.12  node        compose     ssh deploy@10.99.0.12:2222",
        "  witness  10.99.0.13  witness,lb  supervisor  ssh root@10.99.0.13:22",
        "services",
        "  postgres  port 5432  PostgreSQL 15, database shop",
        "  redis     port 6379",
        "  storage   port 9000  minio, buckets media",
        "  backend   port 8000  health /health/",
        "  frontend  port 3000  health /api/health",
        "  http_lb   port 80    haproxy, 2 backend routes, 2 frontend routes",
        "secrets",
        "  services.postgres.password            file:secrets/pg",
        "  services.postgres.superuser_password  env:HAPAIR_TEST_PG_SUPERUSER",
        "  services.redis.password               file:secrets/redis",
        "  services.storage.access_key           file:secrets/s3_access",
        "  services.storage.secret_key           file:secrets/s3_secret",
        "warnings    none",
    ]


def test_render_ipv6_addresses(inv_dir: Path) -> None:
    summary = summarize(load_inventory("inventory.yaml", env=ENV))
    summary["front_door"]["address"] = "fd00::10"
    assert "front door  vip [fd00::10]:80 on eth0" in render_lines(summary)
