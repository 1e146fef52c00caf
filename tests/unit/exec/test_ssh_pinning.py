"""Pure parts of SSHTransport: parsing the pinned key, fingerprints, construction errors."""

from __future__ import annotations

import pytest

from hapair.errors import UsageError
from hapair.exec.ssh import SSHTransport, key_fingerprint, parse_host_key, remote_argv

# A throwaway key; its fingerprint as printed by `ssh-keygen -lf`.
PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIABteA1krWMyhJZ6D4Os4lJSkqFOnIcyfM1PLNuQDC6w test"
FP = "SHA256:+8umvb6rqtZpcAfKFK+sKd0LaZ3me6/pnCbndzrCJFY"


def test_fingerprint_matches_ssh_keygen() -> None:
    assert key_fingerprint(parse_host_key(PUB)) == FP


def test_comment_is_optional() -> None:
    assert key_fingerprint(parse_host_key(" ".join(PUB.split()[:2]))) == FP


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ssh-ed25519",
        "ssh-ed25519 AAAA...",
        "ssh-ed25519 not*base64",
        "ssh-foo AAAAC3NzaC1lZDI1NTE5AAAAIABteA1krWMyhJZ6D4Os4lJSkqFOnIcyfM1PLNuQDC6w",
    ],
)
def test_bad_pins_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_host_key(text)


def test_a_transport_with_a_bad_pin_names_the_host_and_the_key_path() -> None:
    with pytest.raises(UsageError, match=r"node2 \(10\.99\.0\.12:22\): invalid pinned host key "
                       r"\(hosts\[1\]\.ssh\.host_key\)"):
        SSHTransport("node2", "10.99.0.12", 22, "root", "/k", "ssh-ed25519 AAAA...",
                     host_key_ref="hosts[1].ssh.host_key")


def test_construction_does_not_connect() -> None:
    t = SSHTransport("node2", "10.99.0.12", 22, "root", "/nonexistent/key", PUB)
    assert t.pinned.get_name() == "ssh-ed25519"
    t.close()


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        (60, ["timeout", "-k", "5", "62", "id", "-u"]),
        (0.5, ["timeout", "-k", "5", "2.5", "id", "-u"]),
    ],
)
def test_remote_deadline_is_just_past_ours(timeout: float, expected: list[str]) -> None:
    assert remote_argv(["id", "-u"], timeout) == expected
