"""Comparing two sites (pure): backlog, per-site totals, and the media RPO of a drill.

Backlog = objects on the writing site that the other site lacks or holds with a different
size or MD5. The MD5 comes from the ETag of the listing; a multipart ETag ("…-N") is not an
MD5 and depends on the part size, so such pairs are compared by size only and counted as
`size_only` — said in the report, never silently treated as verified.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hapair.components.common import Check


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str  # unquoted, lower case
    last_modified: float  # epoch seconds, the site's own clock

    @property
    def md5(self) -> str | None:
        """The MD5 when the ETag is one (single-part upload), else None."""
        e = self.etag
        return e if len(e) == 32 and all(c in "0123456789abcdef" for c in e) else None


Listing = Mapping[tuple[str, str], ObjectInfo]  # (bucket, key) -> object


def index(objects: Iterable[ObjectInfo]) -> dict[tuple[str, str], ObjectInfo]:
    return {(o.bucket, o.key): o for o in objects}


@dataclass(frozen=True)
class Difference:
    bucket: str
    key: str
    problem: str  # "missing" | "size" | "md5"
    writer: ObjectInfo
    other: ObjectInfo | None


@dataclass(frozen=True)
class Backlog:
    writer: str
    other: str
    differences: tuple[Difference, ...]
    compared: int  # objects present on both sites
    size_only: int  # of those, compared by size only (no MD5 on one side)
    oldest_age_s: float | None  # age of the oldest object still not on the other site

    @property
    def missing(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if d.problem == "missing")

    @property
    def mismatched(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if d.problem != "missing")

    @property
    def bytes(self) -> int:
        return sum(d.writer.size for d in self.differences)

    def check(self) -> Check:
        if not self.differences:
            extra = f" ({self.size_only} by size only)" if self.size_only else ""
            return Check.passed(
                f"{self.other} holds all {self.compared} objects of {self.writer}{extra}"
            )
        first = self.differences[0]
        age = f", oldest {self.oldest_age_s:.0f}s old" if self.oldest_age_s is not None else ""
        return Check.failed(
            f"{self.other} lacks {len(self.missing)} and differs on {len(self.mismatched)} of "
            f"{self.writer}'s objects ({self.bytes} bytes{age}); first: "
            f"{first.bucket}/{first.key} ({first.problem})"
        )


def compare(
    writer_name: str, writer: Listing, other_name: str, other: Listing, *, now: float,
    ignore_prefix: str | None = None,
) -> Backlog:
    """What `other` lacks of `writer`. Objects only on `other` are not backlog (a copy never
    deletes; they are reported by totals)."""
    diffs: list[Difference] = []
    compared = size_only = 0
    for (bucket, key), w in sorted(writer.items()):
        if ignore_prefix and key.startswith(ignore_prefix):
            continue
        o = other.get((bucket, key))
        if o is None:
            diffs.append(Difference(bucket, key, "missing", w, None))
            continue
        compared += 1
        if w.size != o.size:
            diffs.append(Difference(bucket, key, "size", w, o))
        elif w.md5 is None or o.md5 is None:
            size_only += 1
        elif w.md5 != o.md5:
            diffs.append(Difference(bucket, key, "md5", w, o))
    ages = [now - d.writer.last_modified for d in diffs]
    return Backlog(writer_name, other_name, tuple(diffs), compared, size_only,
                   max(ages) if ages else None)


@dataclass(frozen=True)
class Totals:
    site: str
    objects: dict[str, int] = field(default_factory=dict)  # per bucket
    bytes: dict[str, int] = field(default_factory=dict)

    @property
    def total_objects(self) -> int:
        return sum(self.objects.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())


def totals(site: str, buckets: Iterable[str], listing: Listing) -> Totals:
    objects = dict.fromkeys(buckets, 0)
    sizes = dict.fromkeys(buckets, 0)
    for (bucket, _), o in listing.items():
        if bucket in objects:
            objects[bucket] += 1
            sizes[bucket] += o.size
    return Totals(site, objects, sizes)


# -- media RPO of a failover drill ------------------------------------------------------------


class Upload(Protocol):
    """What the drill keeps of an acknowledged upload (drill.records.MediaAck fits)."""

    @property
    def key(self) -> str: ...

    @property
    def sha256(self) -> str: ...

    @property
    def acked_at(self) -> float: ...


@dataclass(frozen=True)
class AckedUpload:
    """An upload the app acknowledged (201) during a drill. `acked_at` and the drill's
    `lost_at` use the same clock (the drill's monotonic clock)."""

    key: str
    sha256: str
    acked_at: float


@dataclass(frozen=True)
class Found:
    """What the surviving site holds under a key: its SHA-256, or None when absent."""

    key: str
    sha256: str | None


@dataclass(frozen=True)
class LostUpload:
    key: str
    problem: str  # "missing" | "corrupt"
    age_s: float  # lost_at - acked_at: how long before the loss it had been acknowledged


@dataclass(frozen=True)
class RpoReport:
    site: str
    acknowledged: int
    lost: tuple[LostUpload, ...]

    @property
    def rpo_s(self) -> float:
        """The media RPO: age of the oldest lost upload (0 when nothing was lost). Uploads
        acknowledged after the loss (negative age) are losses too but widen no window."""
        return max((max(x.age_s, 0.0) for x in self.lost), default=0.0)

    def check(self) -> Check:
        if not self.lost:
            return Check.passed(
                f"all {self.acknowledged} acknowledged uploads are readable on {self.site}"
            )
        keys = ", ".join(f"{x.key} ({x.problem}, {x.age_s:.1f}s)" for x in self.lost[:5])
        more = f" and {len(self.lost) - 5} more" if len(self.lost) > 5 else ""
        return Check.failed(
            f"{len(self.lost)} of {self.acknowledged} acknowledged uploads lost on {self.site}, "
            f"media RPO {self.rpo_s:.1f}s: {keys}{more}"
        )


def rpo_report(
    site: str, uploads: Iterable[Upload], found: Mapping[str, Found], lost_at: float
) -> RpoReport:
    """Which acknowledged uploads the surviving site does not hold intact. A key without an
    entry in `found` counts as missing (it was not found)."""
    ups = list(uploads)
    lost = []
    for u in sorted(ups, key=lambda x: x.acked_at):
        f = found.get(u.key)
        if f is None or f.sha256 is None:
            lost.append(LostUpload(u.key, "missing", lost_at - u.acked_at))
        elif f.sha256.lower() != u.sha256.lower():
            lost.append(LostUpload(u.key, "corrupt", lost_at - u.acked_at))
    return RpoReport(site, len(ups), tuple(lost))


# -- consistency: differences that replication should have removed by now ---------------------


def settled(b: Backlog, *, now: float, min_age_s: float) -> Backlog:
    """The part of a backlog older than `min_age_s` by the writer's LastModified: younger
    objects may legitimately still be on their way; older ones missing or differing on the
    other site mean replication failed or a copy was lost or damaged there."""
    diffs = tuple(d for d in b.differences if now - d.writer.last_modified >= min_age_s)
    ages = [now - d.writer.last_modified for d in diffs]
    return Backlog(b.writer, b.other, diffs, b.compared, b.size_only,
                   max(ages) if ages else None)


def consistency_check(
    writer: str, other: str, problems: Sequence[tuple[str, str, str]], *, compared: int,
    size_only: int, min_age_s: float, show: int = 10,
) -> Check:
    """`problems`: (bucket, key, problem) of the settled differences (see settled()); the
    failure names the objects (up to `show`)."""
    if not problems:
        extra = f", {size_only} by size only" if size_only else ""
        return Check.passed(f"{other} holds every object of {writer} older than "
                            f"{min_age_s:g}s intact ({compared} compared{extra})")
    names = ", ".join(f"{b}/{k} ({p})" for b, k, p in problems[:show])
    more = f" and {len(problems) - show} more" if len(problems) > show else ""
    return Check.failed(f"{other} lacks or differs on {len(problems)} object(s) of {writer} "
                        f"older than {min_age_s:g}s: {names}{more}")


def only_on(first: Listing, second: Listing, ignore_prefix: str | None = None) -> int:
    """Objects of `first` that `second` does not hold (deletes are not replicated)."""
    return sum(1 for (bucket, key) in first if (bucket, key) not in second
               and not (ignore_prefix and key.startswith(ignore_prefix)))
