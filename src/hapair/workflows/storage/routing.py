"""The app's way to storage on each node: the nginx router (reads local, fallback to the
peer) and the HAProxy write selector behind it (writes to the site of the PostgreSQL
primary, by Patroni's GET /primary). Both are installed the same way: a candidate config
checked by the program itself, moved into place, then a start or a graceful reload."""

from __future__ import annotations

import time

from hapair.components.storage import router as s3router
from hapair.components.storage import writer as s3writer
from hapair.components.storage.site import Site
from hapair.errors import CommandFailed, StepFailed
from hapair.exec.runtime import ServiceState
from hapair.exec.transport import Transport
from hapair.workflows.storage.nodeops import wait_running
from hapair.workflows.storage.setup import START_TIMEOUT_S, StorageNode


def router_params(node: StorageNode, peer: Site) -> s3router.RouterParams:
    return s3router.RouterParams(node=node.name, local=node.site, peer=peer, **dict(node.router))


def writer_params(node: StorageNode, peer: StorageNode) -> s3writer.WriterParams:
    targets = tuple(sorted((node.write_target, peer.write_target), key=lambda t: t.site.name))
    return s3writer.WriterParams(node=node.name, targets=targets, **dict(node.writer))


def _replace_config(t: Transport, path: str, content: str, mode: int,
                    test: list[str]) -> bool:
    """Write `path.new`, test it (the test argv names the candidate), move it in place.
    False when the installed file already has this content (nothing to reload)."""
    try:
        if t.read_file(path).decode(errors="replace") == content:
            return False
    except FileNotFoundError:
        pass
    candidate = f"{path}.new"
    t.write_file(candidate, content, mode=mode)
    try:
        t.run(test)
    except CommandFailed:
        t.run(["rm", "-f", candidate])
        raise
    t.run(["mv", "-f", candidate, path])
    return True


def install_writer(node: StorageNode, peer: StorageNode) -> s3writer.WriterParams:
    """The write selector on `node`: HAProxy choosing between both sites by GET /primary.
    Started when absent; reloaded (SIGUSR2, uploads in flight finish) when its config
    changed."""
    p = writer_params(node, peer)
    t = node.transport
    t.run(s3writer.config_dir_argv(p))
    f = s3writer.writer_conf_file(p)
    changed = _replace_config(t, p.config_path, f.content, f.mode,
                              s3writer.check_argv(p, f"{p.config_path}.new"))
    status = node.runtime.status(s3writer.PROGRAM)
    if status.state is ServiceState.RUNNING:
        if changed and status.pid:
            t.run(s3writer.reload_argv(status.pid))
    else:
        node.runtime.define(s3writer.writer_spec(p))
        node.runtime.start(s3writer.PROGRAM)
        wait_running(node.runtime, s3writer.PROGRAM, node.name, START_TIMEOUT_S)
    return p


def install_router(node: StorageNode, peer: Site) -> s3router.RouterParams:
    """Write the router config (checked with `nginx -t` before it replaces the old one), then
    start the router or reload it gracefully."""
    p = router_params(node, peer)
    t = node.transport
    t.run(s3router.prefix_dirs_argv(p))
    f = s3router.router_conf_file(p)
    candidate = f"{p.config_path}.new"
    changed = _replace_config(t, p.config_path, f.content, f.mode,
                              s3router.config_test_argv(p, candidate))
    if node.runtime.status(s3router.PROGRAM).state is ServiceState.RUNNING:
        if changed:
            _reload_router(t, p)
    else:
        node.runtime.define(s3router.router_spec(p))
        node.runtime.start(s3router.PROGRAM)
        wait_running(node.runtime, s3router.PROGRAM, node.name, START_TIMEOUT_S)
    return p


def install_routing(node: StorageNode, peer: StorageNode) -> s3router.RouterParams:
    """Write selector first (the router sends writes to it), then the router."""
    install_writer(node, peer)
    return install_router(node, peer.site)


def _reload_router(t: Transport, p: s3router.RouterParams) -> None:
    """Reload and wait until no worker with the old config accepts a connection."""
    master = int(t.read_file(p.pid_path).decode().strip())
    before = s3router.parse_workers(t.run(s3router.workers_argv(master)).stdout)
    t.run(s3router.reload_argv(p))
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        now = s3router.parse_workers(t.run(s3router.workers_argv(master), check=False).stdout)
        if s3router.reload_done(before, now):
            return
        if time.monotonic() > deadline:
            raise StepFailed(f"{t.name}: nginx router did not take the new config within "
                             f"{START_TIMEOUT_S:g}s (workers {now})")
        time.sleep(0.1)
