"""Starting and stopping replication. Backend `s3`: a pull program on each node, from its
peer (components/storage/replication.py has the rule: only the writer's copies overwrite).
Backend `minio`: MinIO site replication, two-way by itself, set up once with `mc`."""

from __future__ import annotations

from hapair.components.common import Check
from hapair.components.storage import minio
from hapair.components.storage import replication as repl
from hapair.components.storage.site import Site
from hapair.errors import StepFailed
from hapair.workflows.storage.nodeops import install, install_pull, wait_running
from hapair.workflows.storage.setup import START_TIMEOUT_S, StorageNode, StorageSetup


def pull_for(setup: StorageSetup, source: StorageNode, receiver: StorageNode, *,
             follow_writer: bool = True) -> repl.Pull:
    """The receiver's pull from `source`; with `follow_writer`, each pass asks the source's
    Patroni whether it is the writer (else: a one-way pull from a fixed writer)."""
    url = source.write_target.primary_url if follow_writer else None
    return repl.Pull(source.site, receiver.site, setup.buckets, receiver.replication, url)


def start_replication(setup: StorageSetup, source: StorageNode, receiver: StorageNode, *,
                      follow_writer: bool = True) -> Check:
    """The receiver pulls from `source` from now on (MinIO: site replication, both ways)."""
    if setup.backend == "minio":
        return _minio_add(setup, source, receiver.site)
    pull = pull_for(setup, source, receiver, follow_writer=follow_writer)
    install_pull(setup, pull, receiver)
    receiver.runtime.define(repl.replication_spec(pull))
    # define() leaves a program whose definition did not change alone, but the script it
    # runs may have (new source): restart so the loop runs the file just installed.
    receiver.runtime.restart(repl.PROGRAM)
    wait_running(receiver.runtime, repl.PROGRAM, receiver.name, START_TIMEOUT_S)
    how = "as the writer allows" if follow_writer else "(one way)"
    return Check.passed(f"{receiver.name} pulls from {source.name} every "
                        f"{pull.settings.interval_s}s {how}")


def start_two_way(setup: StorageSetup, first: StorageNode, second: StorageNode) -> list[Check]:
    """Each node pulls from the other: whichever site took a write, the other gets it."""
    if setup.backend == "minio":
        return [_minio_add(setup, first, second.site)]
    return [start_replication(setup, first, second), start_replication(setup, second, first)]


def stop_replication(setup: StorageSetup, node: StorageNode) -> None:
    """Remove the pull program from a node (absent is fine). MinIO: nothing runs per node."""
    if setup.backend == "s3":
        node.runtime.remove(repl.PROGRAM)


def _minio_add(setup: StorageSetup, first: StorageNode, second: Site) -> Check:
    sites = (first.site, second)
    t = first.transport
    t.run(["install", "-d", "-m", "0700", setup.mc.config_dir])
    install(t, minio.mc_config_file(setup.mc, sites, setup.credentials))
    info = minio.parse_replicate_info(
        t.run(minio.replicate_info_argv(setup.mc, first.site), check=False).stdout)
    if minio.replication_configured(info, sites).ok:
        return Check.passed("MinIO site replication already configured")
    added = minio.parse_replicate_add(t.run(minio.replicate_add_argv(setup.mc, *sites)).stdout)
    if not added.ok:
        raise StepFailed(f"{first.name}: {added.reason}")
    info = minio.parse_replicate_info(t.run(minio.replicate_info_argv(setup.mc, first.site)).stdout)
    verdict = minio.replication_configured(info, sites)
    if not verdict.ok:
        raise StepFailed(f"{first.name}: {verdict.reason}")
    return verdict
