"""One-shot copies between sites: the upgrade's seed, and reconcile (add only)."""

from __future__ import annotations

from dataclasses import dataclass

from hapair.components.storage import replication as repl
from hapair.components.storage.probe import CopyStats, parse_rclone_stats
from hapair.components.storage.site import Site
from hapair.errors import CommandFailed, UsageError
from hapair.workflows.storage.nodeops import install_pull
from hapair.workflows.storage.s3api import ensure_buckets
from hapair.workflows.storage.setup import Progress, StorageNode, StorageSetup


@dataclass(frozen=True)
class CopyReport:
    source: str
    target: str
    buckets: dict[str, CopyStats]

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.buckets.values())

    @property
    def objects(self) -> int:
        return sum(s.transfers for s in self.buckets.values())

    @property
    def elapsed_s(self) -> float:
        return sum(s.elapsed_s for s in self.buckets.values())


def _copy_all(
    setup: StorageSetup, pull: repl.Pull, node: StorageNode, mode: repl.CopyMode,
    progress: Progress,
) -> CopyReport:
    install_pull(setup, pull, node, script=False)
    done: dict[str, CopyStats] = {}
    for bucket in pull.buckets:
        log = f"{pull.settings.state_dir}/{mode}-{bucket}.log"
        node.transport.run(["rm", "-f", log])
        progress(f"{pull.target.name}: copying {bucket} from {pull.source.name} "
                 f"(follow {node.name}:{log})")
        result = node.transport.run(repl.copy_argv(pull, bucket, mode, log_file=log),
                                    timeout=pull.settings.full_timeout_s + 60, check=False)
        stats = parse_rclone_stats(node.transport.read_file(log).decode(errors="replace"))
        if result.returncode != 0 or stats.errors:
            raise CommandFailed(node.name, result.argv, result.returncode or 1,
                                f"{stats.errors} errors; last: {stats.last_error}")
        progress(f"{pull.target.name}: {bucket}: {stats.transfers} objects copied, "
                 f"{stats.checks} already there, {stats.bytes} bytes in {stats.elapsed_s:.1f}s")
        done[bucket] = stats
    return CopyReport(pull.source.name, pull.target.name, done)


def seed_site(
    setup: StorageSetup, writer: Site, receiver: StorageNode, progress: Progress = lambda _: None
) -> CopyReport:
    """Upgrade: copy every existing object to the receiver's site (run there), --checksum.
    Buckets missing on either site are created first (the loop fails on a missing one).
    Not for MinIO: site replication copies existing objects itself, and MinIO refuses to
    join a second site that already holds buckets."""
    if setup.backend == "minio":
        raise UsageError("MinIO: existing objects are copied by site replication, not seeded")
    for site in (writer, receiver.site):
        ensure_buckets(setup, site)
    pull = repl.Pull(writer, receiver.site, setup.buckets, receiver.replication)
    return _copy_all(setup, pull, receiver, "seed", progress)


def reconcile(
    setup: StorageSetup, old_writer: StorageNode, new_writer: Site,
    progress: Progress = lambda _: None,
) -> CopyReport:
    """By hand (the two-way loops do it by themselves): copy what `old_writer` holds and
    `new_writer` lacks, adding missing objects only (never overwriting the new writer's)."""
    pull = repl.Pull(old_writer.site, new_writer, setup.buckets, old_writer.replication)
    return _copy_all(setup, pull, old_writer, "reconcile", progress)
