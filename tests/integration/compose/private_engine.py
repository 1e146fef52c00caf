"""A throwaway Docker engine for the opt-in end-to-end test, on machines with dockerd but no
running daemon and no registry (this workplace): its own socket, data and exec roots, no
iptables rules and no docker0 bridge (a default dockerd rewrites the machine's iptables, FORWARD
policy DROP included, which would cut the lab's hosts off). The one image it needs is imported
from Debian's busybox-static, so nothing is pulled.
"""

from __future__ import annotations

import io
import shutil
import signal
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BUSYBOX = Path("/usr/bin/busybox")  # Debian's busybox-static: one static binary
IMAGE = "hapair-e2e/busybox:local"
APPLETS = ("sh", "cat", "echo", "sleep", "true", "env", "chmod", "chown", "mv", "stat")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0


def available() -> str | None:
    """Why a private engine cannot run here, or None when it can."""
    for tool in ("dockerd", "docker"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not BUSYBOX.exists():
        return f"{BUSYBOX} missing (apt-get install busybox-static)"
    return None


def _answers(host: str) -> bool:
    return subprocess.run(["docker", "-H", host, "info"], capture_output=True, timeout=20,
                          check=False).returncode == 0


@contextmanager
def private_engine() -> Iterator[str]:
    """Start dockerd, yield its DOCKER_HOST, stop it by its pid (and wait) even on failure."""
    root = Path("/run") / f"hapair-e2e-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o700)
    host = f"unix://{root}/docker.sock"
    log = (root / "dockerd.log").open("wb")
    proc = subprocess.Popen(
        ["dockerd", "-H", host, "--data-root", str(root / "data"), "--exec-root",
         str(root / "exec"), "--pidfile", str(root / "dockerd.pid"), "--iptables=false",
         "--ip-masq=false", "--bridge=none"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(host):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private dockerd did not start; see {root}/dockerd.log")
            time.sleep(0.5)
        yield host
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
        log.close()
        _release(root)


def _release(root: Path) -> None:
    """After the engine stopped: dockerd leaves the host-network sandbox that `--network host`
    builds create (<exec-root>/netns/default, a bind mount) mounted, which rmtree cannot
    remove. Unmount what is left under the engine's root (deepest first), then remove it."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", point], check=False, capture_output=True, timeout=30.0)
    shutil.rmtree(root, ignore_errors=True)


def import_busybox(host: str) -> str:
    """A one-binary image: busybox and a few applet links, imported (never pulled)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
    subprocess.run(["docker", "-H", host, "import", "-", IMAGE], input=buf.getvalue(),
                   capture_output=True, timeout=120, check=True)
    return IMAGE


# --- the fixture both end-to-end tests use (import it into the test module) ---------------


def _daemon_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20,
                              check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(name="image")
def image_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The image to run: busybox in a private engine, or from a daemon already running."""
    if available() is None:
        with private_engine() as host:
            monkeypatch.setenv("DOCKER_HOST", host)  # for the compose CLI the runtime runs
            yield import_busybox(host)
    elif _daemon_answers():
        yield "busybox:1.36"
    else:
        pytest.skip(f"no Docker daemon answers `docker info`, and {available()}")
