"""Backups as data: ids, the manifest.json written beside each dump, and listing entries.

A backup lives in `<backup_dir>/<id>/` on the node that took it; `<id>` is the UTC start time
plus the kind (`20250301T021500Z-logical`). While it is being written the directory is
`<id>.partial`; the rename to `<id>` is the last step, so a directory without the suffix is
always complete. Pure: no I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from hapair.errors import UsageError

Kind = Literal["logical", "physical"]
KINDS: tuple[Kind, ...] = ("logical", "physical")
MANIFEST = "manifest.json"
PARTIAL = ".partial"
FORMAT = "hapair-backup/1"

_ID = re.compile(r"^(\d{8}T\d{6}Z)-(logical|physical)$")
_STAMP = "%Y%m%dT%H%M%SZ"

# Never in a backup: said in every manifest so nobody has to guess.
EXCLUDED = (
    "application env files and secret files (the inventory's secrets live outside backups)",
    "role passwords (globals.sql is dumped with --no-role-passwords)",
    "media objects (the S3 buckets are replicated by the storage layer, not backed up here)",
)


def new_id(kind: Kind, now: datetime) -> str:
    return f"{now.astimezone(UTC).strftime(_STAMP)}-{kind}"


def parse_id(name: str) -> tuple[datetime, Kind] | None:
    """`20250301T021500Z-logical` -> (time, kind); None for anything that is not ours."""
    m = _ID.match(name)
    if not m:
        return None
    when = datetime.strptime(m.group(1), _STAMP).replace(tzinfo=UTC)
    return when, m.group(2)  # type: ignore[return-value]


def require_id(name: str) -> str:
    if parse_id(name) is None:
        raise UsageError(
            f"backup id {name!r}: expected e.g. 20250301T021500Z-logical (see `hapair backup "
            "list`), or 'latest'"
        )
    return name


def scratch_db_name(backup_id: str) -> str:
    """The throw-away database a verification restores into (a plain identifier)."""
    return "hapair_verify_" + require_id(backup_id).lower().replace("-", "_")


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class FileEntry:
    name: str  # relative to the backup directory
    bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bytes": self.bytes, "sha256": self.sha256}


@dataclass(frozen=True)
class Manifest:
    """manifest.json: enough to trust, find, verify and restore a backup without hapair's
    memory of taking it."""

    id: str
    kind: Kind
    cluster: str
    source: dict[str, Any]  # node, role at dump time, reason, lag_bytes
    postgres: dict[str, Any]  # server_version, server_version_num
    files: tuple[FileEntry, ...]
    started_at: str
    finished_at: str
    tools: dict[str, str]
    database: dict[str, Any] | None = None  # logical: name, owner, encoding, collate, ctype
    snapshot: str | None = None  # logical: the exported snapshot dump and counts shared
    tables: tuple[dict[str, Any], ...] | None = None  # logical: {schema, table, rows}
    wal: tuple[dict[str, Any], ...] | None = None  # physical: timeline, start/end LSN
    excluded: tuple[str, ...] = EXCLUDED
    verification: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, kept on rewrite

    @property
    def size_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def file(self, name: str) -> FileEntry:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def verified_ok(self) -> bool:
        return self.verification is not None and self.verification.get("result") == "passed"

    def row_counts(self) -> dict[str, int]:
        return {f"{t['schema']}.{t['table']}": int(t["rows"]) for t in self.tables or ()}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT,
            "id": self.id,
            "kind": self.kind,
            "cluster": self.cluster,
            "source": self.source,
            "postgres": self.postgres,
            "database": self.database,
            "snapshot": self.snapshot,
            "files": [f.to_dict() for f in self.files],
            "size_bytes": self.size_bytes,
            "tables": list(self.tables) if self.tables is not None else None,
            "wal": list(self.wal) if self.wal is not None else None,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "tools": self.tools,
            "excluded": list(self.excluded),
            "verification": self.verification,
        }
        return {**self.extra, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """Raises ValueError (with the key) when the manifest is not one of ours."""
        if data.get("format") != FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
        try:
            kind = data["kind"]
            if kind not in KINDS:
                raise ValueError(f"kind {kind!r}")
            known = {
                "format", "id", "kind", "cluster", "source", "postgres", "database", "snapshot",
                "files", "size_bytes", "tables", "wal", "started_at", "finished_at", "tools",
                "excluded", "verification",
            }
            return cls(
                id=require_id(str(data["id"])),
                kind=kind,
                cluster=str(data["cluster"]),
                source=dict(data["source"]),
                postgres=dict(data["postgres"]),
                files=tuple(
                    FileEntry(str(f["name"]), int(f["bytes"]), str(f["sha256"]))
                    for f in data["files"]
                ),
                started_at=str(data["started_at"]),
                finished_at=str(data["finished_at"]),
                tools=dict(data["tools"]),
                database=data.get("database"),
                snapshot=data.get("snapshot"),
                tables=tuple(data["tables"]) if data.get("tables") is not None else None,
                wal=tuple(data["wal"]) if data.get("wal") is not None else None,
                excluded=tuple(data.get("excluded") or ()),
                verification=data.get("verification"),
                extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"missing or malformed key {exc}") from None
        except UsageError as exc:
            raise ValueError(str(exc)) from None


@dataclass(frozen=True)
class BackupEntry:
    """One directory found in a node's backup directory."""

    node: str
    id: str
    kind: Kind
    taken_at: datetime
    path: str
    complete: bool  # False: an `<id>.partial` directory (in progress, or left by a crash)
    manifest: Manifest | None = None
    problem: str = ""  # why the manifest could not be read

    @property
    def verified_ok(self) -> bool:
        return self.manifest is not None and self.manifest.verified_ok

    @property
    def usable(self) -> bool:
        return self.complete and self.manifest is not None

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        ver = m.verification if m else None
        return {
            "id": self.id,
            "kind": self.kind,
            "node": self.node,
            "path": self.path,
            "complete": self.complete,
            "taken_at": iso(self.taken_at),
            "size_bytes": m.size_bytes if m else None,
            "source_role": m.source.get("role") if m else None,
            "database": (m.database or {}).get("name") if m else None,
            "tables": len(m.tables) if m and m.tables is not None else None,
            "verification": ver.get("result") if ver else None,
            "verified_at": ver.get("verified_at") if ver else None,
            "problem": self.problem or None,
        }


def entry_from_name(node: str, backup_dir: str, name: str) -> BackupEntry | None:
    """A directory name -> entry without its manifest; None when the name is not ours."""
    complete = not name.endswith(PARTIAL)
    base = name if complete else name[: -len(PARTIAL)]
    parsed = parse_id(base)
    if parsed is None:
        return None
    when, kind = parsed
    return BackupEntry(node, base, kind, when, f"{backup_dir.rstrip('/')}/{name}", complete)


def newest_first(entries: list[BackupEntry]) -> list[BackupEntry]:
    return sorted(entries, key=lambda e: (e.taken_at, e.node), reverse=True)


def fmt_bytes(n: int | None) -> str:
    """1536 -> '1.5 KiB' (reasons and tables; JSON keeps the raw number)."""
    if n is None:
        return "unknown"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # not reached


def compare_counts(expected: dict[str, int], actual: dict[str, int]) -> list[str]:
    """Row counts of the manifest vs a restored database: one line per difference."""
    problems = []
    for table in sorted(set(expected) | set(actual)):
        want, got = expected.get(table), actual.get(table)
        if want == got:
            continue
        if got is None:
            problems.append(f"{table}: in the backup ({want} rows) but missing after restore")
        elif want is None:
            problems.append(f"{table}: restored ({got} rows) but not in the backup's manifest")
        else:
            problems.append(f"{table}: {want} rows in the backup, {got} after restore")
    return problems
