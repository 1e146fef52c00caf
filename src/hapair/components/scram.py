"""SCRAM-SHA-256 verifiers computed on the controller (RFC 5802/7677, PostgreSQL's format).

`CREATE ROLE … PASSWORD '<verifier>'` stores the verifier as is, so the plaintext password
never reaches the server, its statement log, or pg_stat_activity.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

ITERATIONS = 4096  # PostgreSQL's default scram_iterations


def scram_sha256_verifier(password: str, *, salt: bytes | None = None,
                          iterations: int = ITERATIONS) -> str:
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def sql_literal(text: str) -> str:
    """Quote a string as an SQL literal (standard_conforming_strings on)."""
    return "'" + text.replace("'", "''") + "'"
