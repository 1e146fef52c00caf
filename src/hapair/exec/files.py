"""File moves as plain commands, so local and SSH transports share one tested approach.

Both commands are a fixed shell snippet run as an argument list: the snippet never changes,
only its positional parameters do, and the file's bytes travel on stdin (never in argv).
"""

from __future__ import annotations

import posixpath
import uuid

# Exit status the read snippet uses for "no such file" (EX_NOINPUT from sysexits.h).
MISSING_FILE_STATUS = 66

# $1 temp path, $2 final mode (octal), $3 final path, $4 umask, $5 owner ("" = leave as is).
# The umask makes the temp file born with (mode & 0600): never looser than requested. The
# trap removes the temp file on any failure; after a successful mv it no longer exists.
_WRITE_SNIPPET = (
    'umask "$4"; trap \'rm -f "$1"\' EXIT; '
    'cat > "$1" && { [ -z "$5" ] || chown "$5" "$1"; } '
    '&& chmod "$2" "$1" && mv -f "$1" "$3"'
)

_READ_SNIPPET = f'[ -e "$1" ] || exit {MISSING_FILE_STATUS}; exec cat -- "$1"'


def temp_path_for(path: str) -> str:
    """A unique hidden sibling of `path`: same directory, so the final rename is atomic."""
    head, tail = posixpath.split(path)
    return posixpath.join(head, f".{tail}.hapair-{uuid.uuid4().hex[:12]}.tmp")


def atomic_write_argv(
    path: str, *, mode: int = 0o600, owner: str | None = None, temp_path: str | None = None
) -> list[str]:
    """argv that writes stdin to `path` atomically with `mode` (and `owner`, "user[:group]")."""
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"invalid file mode {mode!r} for {path}")
    if not path or path.endswith("/"):
        raise ValueError(f"invalid file path {path!r}")
    tmp = temp_path or temp_path_for(path)
    umask = (0o777 & ~mode) | 0o077
    return ["sh", "-c", _WRITE_SNIPPET, "sh", tmp, f"{mode:o}", path, f"{umask:03o}", owner or ""]


def read_argv(path: str) -> list[str]:
    """argv that prints `path` to stdout, or exits MISSING_FILE_STATUS when it does not exist."""
    return ["sh", "-c", _READ_SNIPPET, "sh", path]


def as_bytes(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data
