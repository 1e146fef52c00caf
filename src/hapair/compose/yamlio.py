"""YAML in and out for compose files (ruamel.yaml).

- `load_plain`/`dump_plain`: plain data (safe loader), for files hapair owns entirely.
- `load_roundtrip`/`dump_roundtrip`: the user's own files. Round-trip mode keeps comments,
  key order and quoting; the indentation style is detected from the file (the one whose
  unmodified re-dump differs least from it), so an edit changes only the lines it means to.
"""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

WIDTH = 4096  # never re-wrap a long command line


def load_plain(text: str) -> dict[str, Any]:
    data = YAML(typ="safe", pure=True).load(text)
    return data if isinstance(data, dict) else {}


def dump_plain(data: Any, header: str = "") -> str:
    yaml = YAML(typ="rt")  # round-trip dumper: keeps insertion order, block style
    yaml.width = WIDTH
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    yaml.dump(data, out)
    comment = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    return comment + out.getvalue()


@dataclass(frozen=True)
class Style:
    mapping: int
    sequence: int
    offset: int


# the dash sits `offset` columns in, its item two columns further (mapping 2 or 4)
_CANDIDATES = tuple(Style(m, off + 2, off) for m in (2, 4) for off in (2, 0, 4))


def _yaml(style: Style) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = WIDTH
    yaml.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    return yaml


def load_roundtrip(text: str) -> tuple[CommentedMap, Style]:
    """The document (comments attached) and the indentation style to write it back with."""
    best: tuple[int, Style, CommentedMap] | None = None
    for style in _CANDIDATES:
        yaml = _yaml(style)
        doc = yaml.load(text)
        out = io.StringIO()
        yaml.dump(doc, out)
        cost = _changed_lines(text, out.getvalue())
        if best is None or cost < best[0]:
            best = (cost, style, doc)
        if cost == 0:
            break
    assert best is not None
    if not isinstance(best[2], CommentedMap):
        raise ValueError("a compose file is a mapping")
    return best[2], best[1]


def dump_roundtrip(doc: CommentedMap, style: Style) -> str:
    out = io.StringIO()
    _yaml(style).dump(doc, out)
    return out.getvalue()


def _changed_lines(a: str, b: str) -> int:
    diff = difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=0)
    return sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))
