"""Object keys for uploaded media (pure, unit-tested).

A key is 32 random hex digits plus the upload's extension, sanitised: the client's file name
never reaches the storage path, so no traversal, odd bytes or collisions.
"""

from __future__ import annotations

import mimetypes
import re
import secrets

_EXT_RE = re.compile(r"[a-z0-9]{1,10}")
_KEY_RE = re.compile(r"[0-9a-f]{32}(?:\.[a-z0-9]{1,10})?")
_MIME_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")
FALLBACK_TYPE = "application/octet-stream"


def sanitize_extension(filename: str) -> str:
    """`.ext` (lower case, 1–10 ASCII letters/digits) from a client file name, or ``""``."""
    base = re.split(r"[/\\]", filename or "")[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem.strip("."):  # "name", ".bashrc", "..": no extension
        return ""
    ext = ext.strip().lower()
    return f".{ext}" if _EXT_RE.fullmatch(ext) else ""


def new_key(filename: str, token: str | None = None) -> str:
    token = token if token is not None else secrets.token_hex(16)
    if not re.fullmatch(r"[0-9a-f]{32}", token):
        raise ValueError("token must be 32 lower-case hex digits")
    return token + sanitize_extension(filename)


def is_valid_key(key: str) -> bool:
    return bool(_KEY_RE.fullmatch(key))


def content_type_for(key: str, declared: str | None) -> str:
    """The extension decides when it is known; otherwise a well-formed declared type."""
    guessed, _ = mimetypes.guess_type(f"x{key[key.find('.') :]}" if "." in key else "x")
    if guessed:
        return guessed
    declared = (declared or "").split(";")[0].strip().lower()
    return declared if _MIME_RE.fullmatch(declared) else FALLBACK_TYPE
