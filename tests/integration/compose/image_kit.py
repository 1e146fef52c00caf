"""Images for the opt-in end-to-end tests, on an engine that cannot pull (no registry here).

    ids = ensure_images("unix:///run/hapair-e2e-xxxx/docker.sock")  # name -> image id

Builds what image_recipes.py describes: a Debian rootfs made ONCE with debootstrap
--variant=minbase and `docker import`ed, then stand-ins for postgres/redis/etcd/haproxy built
FROM it with `docker build --network host` (the private engine has no bridge to build on).
A private engine's images die with it, so each built image is also `docker save`d into the
cache dir, keyed by a hash of its Dockerfile, files and base; the next run `docker load`s it.
Delete /var/cache/hapair-e2e (or point HAPAIR_E2E_CACHE elsewhere) to start from scratch;
HAPAIR_E2E_REBUILD=1 rebuilds the images but keeps the rootfs.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from image_recipes import (
    DEFAULT,
    IMAGES,
    KIT_VERSION,
    LABEL,
    MIRROR,
    ROOTFS,
    ROOTFS_FILES,
    ImageSpec,
    RootfsSpec,
)

log = logging.getLogger(__name__)

CACHE = Path(os.environ.get("HAPAIR_E2E_CACHE", "/var/cache/hapair-e2e"))
# HAPAIR_E2E_REBUILD=1: build every image again (the cached rootfs is still reused), e.g. to
# see that a cached image's Dockerfile still builds against today's Debian and PyPI.
REBUILD = os.environ.get("HAPAIR_E2E_REBUILD") == "1"
DEBOOTSTRAP_TIMEOUT = 1800.0
BUILD_TIMEOUT = 1800.0
SAVE_LOAD_TIMEOUT = 600.0
LOCK_TIMEOUT = 3600.0  # another run may be building the same cache
# The host's own added CAs: HTTPS here goes through a TLS-inspecting egress proxy whose CA is
# installed there, so pip inside a build needs it too. Copied to the same path in the rootfs,
# where a later `ca-certificates` install (as in the generated Patroni build) picks it up.
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Spec = RootfsSpec | ImageSpec


class KitError(RuntimeError):
    pass


def available() -> str | None:
    """Why the kit cannot build here (None when it can). A cached rootfs needs no debootstrap,
    but a fresh machine does."""
    if shutil.which("debootstrap") is None:
        return "debootstrap missing (apt-get install debootstrap)"
    return None


# --- keys (pure) -----------------------------------------------------------------------------


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in (KIT_VERSION, *parts):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def spec_key(spec: Spec, registry: dict[str, Spec], cas: dict[str, str]) -> str:
    """Changes whenever what the image is made of changes, its base's recipe included."""
    if isinstance(spec, RootfsSpec):
        tweaks = sorted((p, f"{m:o}", t) for p, (m, t) in ROOTFS_FILES.items())
        return _digest("rootfs", spec.suite, "minbase", MIRROR, spec.sources, repr(tweaks),
                       repr(sorted(cas.items())))
    base = registry.get(spec.base)
    base_key = spec_key(base, registry, cas) if base is not None else spec.base
    files = [f"{name}\0{text}" for name, text in sorted(spec.files.items())]
    return _digest("image", base_key, spec.dockerfile, *files)


def local_cas() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(LOCAL_CAS.glob("*.crt"))}


def slug(name: str) -> str:
    return name.replace("/", "_").replace(":", "_")


# --- docker CLI ------------------------------------------------------------------------------


def docker(host: str, *args: str, timeout: float, check: bool = True
           ) -> subprocess.CompletedProcess[str]:
    # the client has no buildx here; the legacy builder is what `--network host` needs anyway
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    result = subprocess.run(["docker", "-H", host, *args], capture_output=True, text=True,
                            timeout=timeout, check=False, env=env)
    if check and result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-40:])
        raise KitError(f"docker {args[0]} failed (exit {result.returncode}):\n{tail}")
    return result


def _label(host: str, name: str) -> str | None:
    """The kit key on image `name`; "" for an image the kit did not make; None if absent."""
    result = docker(host, "image", "inspect", "-f", f'{{{{index .Config.Labels "{LABEL}"}}}}',
                    name, timeout=60.0, check=False)
    if result.returncode != 0:
        return None
    value = result.stdout.strip()
    return "" if value in ("", "<no value>") else value


def image_id(host: str, name: str) -> str:
    return docker(host, "image", "inspect", "-f", "{{.Id}}", name, timeout=60.0).stdout.strip()


# --- cache -------------------------------------------------------------------------------------


@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """One run fills the cache at a time; the others wait (bounded), then reuse it."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as f:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise KitError(f"{cache}/.lock held for over {LOCK_TIMEOUT:.0f}s") from None
                time.sleep(2.0)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _publish(tmp: Path, final: Path) -> None:
    """Atomically put `tmp` in place and drop older versions of the same thing."""
    os.replace(tmp, final)
    stem = final.name.rsplit("-", 1)[0]
    for old in final.parent.glob(f"{stem}-*.tar"):
        if old != final:
            old.unlink(missing_ok=True)


def rootfs_tar(spec: RootfsSpec, key: str, cache: Path, cas: dict[str, str]) -> Path:
    """The cached rootfs tarball, made by debootstrap when missing."""
    final = cache / "rootfs" / f"{spec.suite}-minbase-{key}.tar"
    if final.exists():
        return final
    if (why := available()) is not None:
        raise KitError(why)
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".build-{spec.suite}-", dir=final.parent))
    try:
        root = work / "root"
        started = time.monotonic()
        with (work / "debootstrap.log").open("w") as out:
            result = subprocess.run(
                ["debootstrap", "--variant=minbase", spec.suite, str(root), MIRROR],
                stdout=out, stderr=subprocess.STDOUT, timeout=DEBOOTSTRAP_TIMEOUT, check=False)
        if result.returncode != 0:
            tail = (work / "debootstrap.log").read_text(errors="replace").splitlines()[-30:]
            raise KitError(f"debootstrap {spec.suite} failed:\n" + "\n".join(tail))
        _slim(root, spec, cas)
        tmp = work / "rootfs.tar"
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*",
                        "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
                        "-C", str(root), "-cf", str(tmp), "."],
                       check=True, capture_output=True, timeout=600.0)
        _publish(tmp, final)
        log.info("rootfs %s: debootstrap + tar in %.0fs", spec.suite,
                 time.monotonic() - started)
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _slim(root: Path, spec: RootfsSpec, cas: dict[str, str]) -> None:
    """What the official debian images change after debootstrap (see ROOTFS_FILES), and the
    host's local CAs."""
    for name, text in cas.items():
        ca = root / LOCAL_CAS.relative_to("/") / name
        ca.parent.mkdir(parents=True, exist_ok=True)
        ca.write_text(text)
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(spec.sources)
    for rel, (mode, text) in ROOTFS_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
    for pattern in ("var/lib/apt/lists/*", "var/cache/apt/*.bin",
                    "var/cache/apt/archives/*.deb", "var/log/*.log"):
        for p in root.glob(pattern):
            if p.is_file():
                p.unlink()
    (root / "etc/resolv.conf").write_text("")  # the engine mounts its own; drop the host's
    (root / "etc/hostname").write_text("localhost\n")


# --- making one image --------------------------------------------------------------------------


def _import(host: str, spec: RootfsSpec, key: str, cache: Path, cas: dict[str, str]) -> None:
    tar = rootfs_tar(spec, key, cache, cas)
    docker(host, "import", "--change", f"ENV PATH={DEFAULT_PATH}", "--change", 'CMD ["bash"]',
           "--change", f"LABEL {LABEL}={key}", str(tar), spec.names[0], timeout=SAVE_LOAD_TIMEOUT)
    for extra in spec.names[1:]:
        docker(host, "tag", spec.names[0], extra, timeout=60.0)


def _build(host: str, spec: ImageSpec, key: str, cache: Path) -> None:
    """docker build, then docker save (every tag) into the cache."""
    with tempfile.TemporaryDirectory(prefix="hapair-e2e-ctx-") as ctx:
        (Path(ctx) / "Dockerfile").write_text(spec.dockerfile)
        for name, text in spec.files.items():
            # a name may hold directories (e.g. the CMS image's `backend/articles/views.py`)
            (Path(ctx) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(ctx) / name).write_text(text)
        tags = [arg for name in spec.names for arg in ("-t", name)]
        docker(host, "build", "--network", "host", "--label", f"{LABEL}={key}", *tags, ctx,
               timeout=BUILD_TIMEOUT)
    images = cache / "images"
    images.mkdir(parents=True, exist_ok=True)
    tmp = images / f".{slug(spec.names[0])}-{key}.tar.{os.getpid()}"
    try:
        docker(host, "save", "-o", str(tmp), *spec.names, timeout=SAVE_LOAD_TIMEOUT)
        _publish(tmp, images / f"{slug(spec.names[0])}-{key}.tar")
    finally:
        tmp.unlink(missing_ok=True)


class _Ensurer:
    def __init__(self, host: str, registry: dict[str, Spec], cache: Path) -> None:
        self.host, self.registry, self.cache = host, registry, cache
        self.done: set[str] = set()
        self.cas = local_cas()

    def ensure(self, name: str) -> None:
        spec = self.registry[name]
        if spec.names[0] in self.done:
            return
        key = spec_key(spec, self.registry, self.cas)
        labels = {_label(self.host, n) for n in spec.names}
        if labels in ({key}, {""}):  # ours and current, or all someone's real images: use them
            self.done.add(spec.names[0])
            return
        started = time.monotonic()
        tar = self.cache / "images" / f"{slug(spec.names[0])}-{key}.tar"
        if isinstance(spec, RootfsSpec):
            _import(self.host, spec, key, self.cache, self.cas)
            how = "imported"
        elif tar.exists() and not REBUILD:
            docker(self.host, "load", "-i", str(tar), timeout=SAVE_LOAD_TIMEOUT)
            how = "loaded from cache"
        else:
            if spec.base in self.registry:
                self.ensure(spec.base)
            _build(self.host, spec, key, self.cache)
            how = "built and saved"
        log.info("%s: %s in %.1fs", ", ".join(spec.names), how, time.monotonic() - started)
        self.done.add(spec.names[0])


def ensure_images(docker_host: str, names: Iterable[str] = DEFAULT,
                  extra: Iterable[ImageSpec] = (), cache: Path = CACHE) -> dict[str, str]:
    """Make every image in `names` exist in the engine at `docker_host` (loading, importing
    or building what is missing) and return name -> image id. `extra` adds recipes, e.g. an
    image built from hapair's own generated Dockerfile, cached the same way."""
    registry: dict[str, Spec] = {}
    specs: list[Spec] = [*ROOTFS, *IMAGES, *extra]
    for spec in specs:
        for name in spec.names:
            registry[name] = spec
    wanted = list(names)
    unknown = [n for n in wanted if n not in registry]
    if unknown:
        raise KitError(f"no recipe for {', '.join(unknown)}")
    with _locked(cache):
        ensurer = _Ensurer(docker_host, registry, cache)
        for name in wanted:
            ensurer.ensure(name)
    return {name: image_id(docker_host, name) for name in wanted}
