"""Files and programs on a node: install a rendered file, wait for a program, start a site."""

from __future__ import annotations

import time

from hapair.components.common import RenderedFile
from hapair.components.storage import replication as repl
from hapair.components.storage.site import SITE_PROGRAM, SiteServer, site_env_file, site_spec
from hapair.errors import StepFailed
from hapair.exec.runtime import ServiceRuntime, ServiceState
from hapair.exec.transport import Transport
from hapair.workflows.storage.s3api import ensure_buckets
from hapair.workflows.storage.setup import START_TIMEOUT_S, StorageNode, StorageSetup


def install(t: Transport, f: RenderedFile) -> None:
    t.write_file(f.path, f.content, mode=f.mode, owner=f.owner)


def install_pull(setup: StorageSetup, pull: repl.Pull, node: StorageNode, *,
                 script: bool = True) -> None:
    """The rclone remotes (0600) and, for the loop, its script. One-shot copies install no
    script: they must not replace the loop's."""
    s = pull.settings
    node.transport.run(repl.config_dir_argv(s))
    node.transport.run(repl.state_dir_argv(s))
    install(node.transport, repl.rclone_conf_file((pull.source, pull.target),
                                                  setup.credentials, setup.backend, s))
    if script:
        install(node.transport, repl.script_file(pull))


def wait_running(rt: ServiceRuntime, name: str, host: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        st = rt.status(name)
        if st.state is ServiceState.RUNNING:
            return
        if time.monotonic() > deadline or st.state is ServiceState.FAILED:
            raise StepFailed(f"{host}: {name} is {st.state.value} ({st.detail}); log tail:\n"
                             + rt.logs(name, 20))
        time.sleep(0.2)


def start_site(
    setup: StorageSetup, node: StorageNode, server: SiteServer, name: str = SITE_PROGRAM
) -> list[str]:
    """Backend `s3`: define and start `rclone serve s3` on a node (node2 in the upgrade),
    wait until it answers S3, and create the buckets. Returns the buckets created."""
    t = node.transport
    t.run(["install", "-d", "-o", server.user, "-g", server.user, "-m", "0750",
           server.data_dir, server.cache_dir])
    install(t, site_env_file(server, setup.credentials))
    node.runtime.define(site_spec(server, name))
    node.runtime.start(name)
    wait_running(node.runtime, name, node.name, START_TIMEOUT_S)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            return ensure_buckets(setup, node.site)
        except Exception as exc:  # noqa: BLE001 - not listening yet, or not answering S3
            if time.monotonic() > deadline:
                raise StepFailed(f"{node.name}: the S3 site at {node.site.url} does not "
                                 f"answer: {exc}") from None
            time.sleep(0.3)
