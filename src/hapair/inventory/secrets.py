"""Secrets by reference: `{file: path}` or `{env: NAME}`, never inline in the inventory.

A resolved secret is a `Secret`: its str, repr, format and JSON forms are "***"; only
`.reveal()` gives the value. `redact()` scrubs known secret values from any text (logs,
command output) before it is shown or written.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, quote_plus

from pydantic_core import core_schema

REDACTED = "***"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REF_HELP = "use {file: path} or {env: NAME}"


@dataclass(frozen=True)
class SecretRef:
    """Where a secret comes from; safe to show (it holds no value)."""

    kind: Literal["file", "env"]
    target: str

    def describe(self) -> str:
        """'file:secrets/pg' or 'env:PGPASSWORD' (used in JSON output and messages)."""
        return f"{self.kind}:{self.target}"


class Secret:
    """A secret value that does not show itself by accident."""

    __slots__ = ("_ref", "_value")

    def __init__(self, value: str, ref: SecretRef) -> None:
        self._value = value
        self._ref = ref

    @property
    def ref(self) -> SecretRef:
        return self._ref

    def reveal(self) -> str:
        """The real value. Call it only where the value goes to its consumer (stdin, 0600)."""
        return self._value

    def __str__(self) -> str:
        return REDACTED

    def __repr__(self) -> str:
        return f"Secret({REDACTED}, {self._ref.describe()})"

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (self._ref, self._value) == (
            other._ref,
            other._value,
        )

    def __hash__(self) -> int:
        return hash((self._ref, self._value))

    def __reduce__(self) -> Any:
        # Pickling would write the value somewhere we do not control.
        raise TypeError("a Secret cannot be pickled")

    @classmethod
    def __get_pydantic_core_schema__(cls, _source: Any, _handler: Any) -> core_schema.CoreSchema:
        return core_schema.is_instance_schema(
            cls,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda _s: REDACTED, return_schema=core_schema.str_schema()
            ),
        )


class SecretError(ValueError):
    """A reference that does not resolve. The message never contains a secret value."""


def parse_ref(raw: object) -> SecretRef:
    """The YAML value of a secret key -> SecretRef (pure; raises SecretError)."""
    if not isinstance(raw, Mapping):
        # Never echo the value: it may be a password written inline by mistake.
        raise SecretError(f"a secret must be a reference, not an inline value: {_REF_HELP}")
    unknown = sorted(str(k) for k in raw if k not in ("file", "env"))
    if unknown:
        raise SecretError(f"unknown key {unknown[0]!r} in secret reference: {_REF_HELP}")
    if len(raw) != 1:
        raise SecretError(f"a secret reference has exactly one key: {_REF_HELP}")
    kind, target = next(iter(raw.items()))
    if not isinstance(target, str) or not target:
        raise SecretError(f"secret reference {kind}: expected a non-empty string")
    if kind == "env" and not _ENV_NAME.match(target):
        raise SecretError(f"{target!r} is not an environment variable name")
    return SecretRef(kind=kind, target=target)


def _strip_newline(value: str) -> str:
    if value.endswith("\r\n"):
        return value[:-2]
    return value[:-1] if value.endswith("\n") else value


def read_secret_file(path: Path, shown: str) -> str:
    """Read a private secret file; `shown` is how the message names it (as written)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SecretError(f"secret file {shown} missing") from None
    except OSError as exc:
        raise SecretError(f"cannot read secret file {shown}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise SecretError(f"secret file {shown} is not a regular file")
    if st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        raise SecretError(
            f"secret file {shown} is accessible by group/others (mode {mode:04o}); chmod 600 it"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"secret file {shown} is not UTF-8 text") from None
    except OSError as exc:
        raise SecretError(f"cannot read secret file {shown}: {exc.strerror}") from None
    value = _strip_newline(text)
    if not value:
        raise SecretError(f"secret file {shown} is empty")
    return value


def resolve_ref(ref: SecretRef, base_dir: Path, env: Mapping[str, str]) -> Secret:
    """Read the value a reference points at (file relative to base_dir, or env var)."""
    if ref.kind == "file":
        return Secret(read_secret_file(base_dir / ref.target, ref.target), ref)
    value = env.get(ref.target)
    if value is None:
        raise SecretError(f"environment variable {ref.target} is not set")
    value = _strip_newline(value)
    if not value:
        raise SecretError(f"environment variable {ref.target} is empty")
    return Secret(value, ref)


def _forms(value: str) -> set[str]:
    # The value as it appears in text, and as it appears inside URLs and DSNs.
    return {value, quote(value, safe=""), quote_plus(value, safe="")}


def redact(text: str, secrets: Iterable[Secret] | Mapping[str, Secret]) -> str:
    """Replace every known secret value in `text` by '***' (longest first)."""
    items = secrets.values() if isinstance(secrets, Mapping) else secrets
    forms: set[str] = set()
    for secret in items:
        forms |= _forms(secret.reveal())
    for form in sorted((f for f in forms if f), key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text
