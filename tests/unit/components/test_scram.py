import base64
import hashlib
import hmac

from hapair.components.scram import scram_sha256_verifier, sql_literal


def test_verifier_format_and_keys_match_rfc_derivation() -> None:
    salt = bytes(range(16))
    verifier = scram_sha256_verifier("pencil", salt=salt, iterations=4096)
    head, keys = verifier.split("$", 1)[1].split("$")
    iterations, salt_b64 = head.split(":")
    stored_b64, server_b64 = keys.split(":")
    assert verifier.startswith("SCRAM-SHA-256$4096:")
    assert int(iterations) == 4096 and base64.b64decode(salt_b64) == salt
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert base64.b64decode(stored_b64) == hashlib.sha256(client_key).digest()
    assert base64.b64decode(server_b64) == hmac.new(salted, b"Server Key", hashlib.sha256).digest()


def test_verifier_never_contains_the_password_and_salts_differ() -> None:
    a, b = scram_sha256_verifier("hunter2hunter2"), scram_sha256_verifier("hunter2hunter2")
    assert "hunter2" not in a and a != b


def test_sql_literal_escapes_quotes() -> None:
    assert sql_literal("it's") == "'it''s'"
