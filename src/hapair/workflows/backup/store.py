"""Backup directories on a node: create, publish, list, read and rewrite manifests, remove.

The base directory is 0700 and owned by postgres; each backup is written as `<id>.partial`
and renamed to `<id>` once its manifest is in place (see model.py). On a compose host these
commands run in hapair-patroni, on the host's directory mounted there (containers.py).
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import replace

from hapair.components.pgdump import parse_sha256sum, parse_sizes, sha256_argv, size_argv
from hapair.errors import CommandFailed, HapairError, Refused, StepFailed
from hapair.workflows.backup import containers
from hapair.workflows.backup.model import (
    MANIFEST,
    PARTIAL,
    BackupEntry,
    FileEntry,
    Kind,
    Manifest,
    entry_from_name,
    newest_first,
    require_id,
)
from hapair.workflows.backup.nodes import STEP_TIMEOUT, Log, Node, Pair, as_postgres, error_text


def backup_path(node: Node, backup_id: str, *, partial: bool = False) -> str:
    return posixpath.join(node.backup_dir, backup_id + (PARTIAL if partial else ""))


def ensure_base(node: Node) -> None:
    """The backup directory: 0700, owned by postgres (parents are created as needed); on a
    compose host, set from the host and checked to be the one the container sees."""
    if node.host_transport is not None:
        containers.prepare_dir(node.name, node.host_transport, node.transport, node.backup_dir,
                               node.os_user)
        return
    node.transport.run(
        ["install", "-d", "-m", "0700", "-o", node.os_user, "--", node.backup_dir],
        timeout=STEP_TIMEOUT,
    )


def make_dir(node: Node, path: str) -> None:
    """mkdir without -p: fails when the directory exists (two runs in the same second)."""
    try:
        as_postgres(node, ["mkdir", "-m", "0700", "--", path])
    except CommandFailed as exc:
        if "File exists" in exc.stderr:
            raise Refused(f"{node.name}: {path} already exists (another backup run?)") from None
        raise


def publish(node: Node, partial: str, final: str) -> None:
    """The last step of a backup: `<id>.partial` -> `<id>` (-T: never move *into* a dir)."""
    as_postgres(node, ["mv", "-T", "--", partial, final])


def remove(node: Node, path: str) -> None:
    """rm -rf, only for a directory directly under the node's backup directory."""
    if posixpath.dirname(path.rstrip("/")) != node.backup_dir.rstrip("/"):
        raise StepFailed(f"refusing to remove {path}: not directly under {node.backup_dir}")
    node.transport.run(["rm", "-rf", "--", path], timeout=STEP_TIMEOUT)


def file_entries(node: Node, directory: str, names: list[str]) -> tuple[FileEntry, ...]:
    paths = [posixpath.join(directory, n) for n in names]
    sums = parse_sha256sum(node.transport.run(sha256_argv(paths), timeout=STEP_TIMEOUT * 12).stdout)
    sizes = parse_sizes(node.transport.run(size_argv(paths), timeout=STEP_TIMEOUT).stdout)
    missing = [p for p in paths if p not in sums or p not in sizes]
    if missing:
        raise StepFailed(f"{node.name}: no checksum or size for {', '.join(missing)}")
    return tuple(FileEntry(n, sizes[p], sums[p]) for n, p in zip(names, paths, strict=True))


def check_files(node: Node, entry: BackupEntry) -> list[str]:
    """Every file of the manifest is there with its size and sha256; problems, one line each."""
    assert entry.manifest is not None
    problems = []
    for f in entry.manifest.files:
        path = posixpath.join(entry.path, f.name)
        r = node.transport.run(sha256_argv([path]), check=False, timeout=STEP_TIMEOUT * 12)
        digest = parse_sha256sum(r.stdout).get(path)
        if not r.ok or digest is None:
            problems.append(f"{f.name}: cannot be read ({r.stderr.strip() or 'no checksum'})")
        elif digest != f.sha256:
            problems.append(f"{f.name}: sha256 {digest[:12]}… differs from the manifest's "
                            f"{f.sha256[:12]}… (the file changed or is corrupt)")
    return problems


def write_manifest(node: Node, directory: str, manifest: Manifest) -> None:
    text = json.dumps(manifest.to_dict(), indent=2) + "\n"
    node.transport.write_file(posixpath.join(directory, MANIFEST), text, mode=0o600,
                              owner=node.os_user)


def list_entries(node: Node) -> list[BackupEntry]:
    """Every backup directory on the node (complete ones with their manifest). Read on the
    host: on compose it is the same directory, which the container's postgres cannot read
    while it is still the upgrade's (root, 0700), and a stopped container hides nothing."""
    t = node.on_host
    if not t.run(["test", "-d", node.backup_dir], check=False, timeout=STEP_TIMEOUT).ok:
        return []
    names = t.run(
        ["find", node.backup_dir, "-mindepth", "1", "-maxdepth", "1", "-type", "d",
         "-printf", "%f\\n"],
        timeout=STEP_TIMEOUT,
    ).stdout.splitlines()
    out = []
    for name in sorted(names):
        entry = entry_from_name(node.name, node.backup_dir, name)
        if entry is None:
            continue
        if entry.complete:
            entry = _with_manifest(node, entry)
        out.append(entry)
    return out


def _with_manifest(node: Node, entry: BackupEntry) -> BackupEntry:
    try:
        raw = node.on_host.read_file(posixpath.join(entry.path, MANIFEST))
        manifest = Manifest.from_dict(json.loads(raw))
    except FileNotFoundError:
        return replace(entry, problem=f"no {MANIFEST}")
    except (ValueError, UnicodeDecodeError) as exc:
        return replace(entry, problem=f"{MANIFEST} unreadable: {exc}")
    if manifest.id != entry.id:
        return replace(entry, problem=f"{MANIFEST} names {manifest.id}, not {entry.id}")
    return replace(entry, manifest=manifest)


def list_all(pair: Pair, log: Log) -> tuple[list[BackupEntry], list[str]]:
    """Backups on every node, newest first; unreachable nodes become warnings."""
    entries: list[BackupEntry] = []
    warnings = []
    for node in pair.nodes:
        try:
            entries += list_entries(node)
        except HapairError as exc:
            warnings.append(f"{node.name}: backups not listed: {error_text(exc)}")
            log(warnings[-1])
    return newest_first(entries), warnings


def find_backup(
    pair: Pair, ref: str, log: Log, kind: Kind | None = None
) -> tuple[Node, BackupEntry, list[str]]:
    """`ref` is a backup id or 'latest' (the newest complete backup, of `kind` if given)."""
    if ref != "latest":
        require_id(ref)
    entries, warnings = list_all(pair, log)
    usable = [e for e in entries if e.usable and (kind is None or e.kind == kind)]
    if ref == "latest":
        found = usable[:1]
    else:
        found = [e for e in usable if e.id == ref]
        broken = [e for e in entries if e.id == ref and not e.usable]
        if not found and broken:
            e = broken[0]
            why = e.problem or "incomplete (still running, or left by an interrupted run)"
            raise Refused(f"backup {ref} on {e.node} cannot be used: {why}")
    if not found:
        what = f"no {kind + ' ' if kind else ''}backup" + ("" if ref == "latest" else f" {ref}")
        where = f" ({'; '.join(warnings)})" if warnings else ""
        raise Refused(f"{what} found on any node{where}; see `hapair backup list`")
    if len(found) > 1 and ref != "latest":
        log(f"backup {ref} exists on several nodes; using the copy on {found[0].node}")
    return pair.node(found[0].node), found[0], warnings
