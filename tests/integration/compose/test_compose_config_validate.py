"""Every generated and edited compose file passes `docker-compose config -q` (Debian's
docker-compose 1.29 validates without a Docker daemon) and, as docker-compose itself reads
it, our own invariants. Skipped where docker-compose is not installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "unit" / "compose"))
from compose_fixtures import COMPOSE_FILE, ENV_FILE, generate_params  # noqa: E402

from hapair.compose.collect import discover_offline  # noqa: E402
from hapair.compose.edits import NodeEdit, edit_compose_file  # noqa: E402
from hapair.compose.generate import expectations, generate  # noqa: E402
from hapair.compose.invariants import Expect, check, load_project  # noqa: E402

DOCKER_COMPOSE = shutil.which("docker-compose")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose (v1) is not installed"),
]


def compose(*args: str) -> subprocess.CompletedProcess[str]:
    assert DOCKER_COMPOSE is not None
    return subprocess.run([DOCKER_COMPOSE, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def install(bundle, root: Path) -> Path:
    """Write a bundle's files under `root` (the bundle was generated for that root)."""
    for f in bundle.files:
        path = Path(f.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f.content)
    return Path(bundle.compose_path)


def test_generated_files_validate(tmp_path: Path) -> None:
    for bundle in generate(generate_params(root=str(tmp_path))):
        path = install(bundle, tmp_path)
        result = compose("-p", bundle.project, "-f", str(path), "config", "-q")
        assert result.returncode == 0, (bundle.host.name, result.stderr)
        # as docker-compose reads the file, our invariants still hold
        normalized = compose("-p", bundle.project, "-f", str(path), "config").stdout
        assert check(load_project(normalized, bundle.project), expectations(bundle)) == [], \
            bundle.host.name


def test_edited_user_files_validate(tmp_path: Path) -> None:
    stack = discover_offline([COMPOSE_FILE], [ENV_FILE])
    shutil.copy(ENV_FILE, tmp_path / ".env.node1")
    shutil.copy(ENV_FILE, tmp_path / ".env.node2")
    user = Expect(data_services=frozenset({"postgres", "redis", "minio"}),
                  postgres=frozenset({"postgres"}))
    for edit in (NodeEdit("node1", "10.0.0.11", True),
                 NodeEdit("node2", "10.0.0.12", False, ("node1", "node2"))):
        result = edit_compose_file(COMPOSE_FILE.read_text(), "/x", stack, edit)
        path = tmp_path / f"docker-compose.{edit.node}.yml"
        path.write_text(result.after)
        args = ["-p", "idp-cms", "-f", str(path), "--env-file", str(tmp_path / f".env.{edit.node}")]
        checked = compose(*args, "config", "-q")
        assert checked.returncode == 0, (edit.node, checked.stderr)
        normalized = compose(*args, "config").stdout
        assert check(load_project(normalized, "idp-cms"), user) == [], edit.node


def test_the_original_fixture_is_valid_compose_but_breaks_our_rules() -> None:
    args = ["-p", "idp-cms", "-f", str(COMPOSE_FILE), "--env-file", str(ENV_FILE)]
    assert compose(*args, "config", "-q").returncode == 0
    normalized = compose(*args, "config").stdout
    rules = {v.rule for v in check(load_project(normalized, "idp-cms"), Expect(
        data_services=frozenset({"postgres", "redis"}), postgres=frozenset({"postgres"})))}
    assert rules == {"public-data-port", "resurrecting-restart", "pg-stop-grace",
                     "migrate-on-start"}


def test_validation_is_not_vacuous(tmp_path: Path) -> None:
    bundle = generate(generate_params(root=str(tmp_path)))[0]
    path = install(bundle, tmp_path)
    path.write_text(bundle.text.replace("stop_grace_period: 120s", "stop_grace_perod: 120s"))
    result = compose("-p", bundle.project, "-f", str(path), "config", "-q")
    assert result.returncode != 0
