"""Which URL a drill may send load to. Pure: no name resolution, no traffic.

The workplace allows traffic only to loopback and to the lab's subnet, so a load aimed
anywhere else is refused unless the operator says `--allow-any-target` (real servers).
Host names other than `localhost` are refused without the flag: resolving them would
itself be traffic, and their address could change between the check and the load.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urljoin, urlsplit

from hapair.errors import Refused, UsageError

LAB_SUBNET = ipaddress.ip_network("10.99.0.0/24")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def validate_target(url: str, allow_any_target: bool = False) -> str:
    """Return the normalised base URL (always ending in '/') or raise.

    UsageError (exit 2): not http(s), no host, credentials or query in the URL.
    Refused (exit 3): host outside loopback and 10.99.0.0/24 without `allow_any_target`."""
    parts = _split(url)
    host = parts.hostname or ""
    if not allow_any_target and not is_allowed_host(host):
        raise Refused(
            f"drill target {host!r} is neither loopback nor in the lab subnet {LAB_SUBNET}; "
            "give an IP address there, or pass --allow-any-target for a real server"
        )
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return f"{parts.scheme}://{parts.netloc}{path}"


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise UsageError(f"--url {url!r}: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"--url {url!r}: must start with http:// or https://")
    if not parts.hostname:
        raise UsageError(f"--url {url!r}: no host")
    if parts.username is not None or parts.password is not None:
        # Credentials would end up in reports and record files.
        raise UsageError(f"--url: remove the credentials from the URL (host {parts.hostname})")
    if parts.query or parts.fragment:
        raise UsageError(f"--url {url!r}: give the front door's base URL, without ?query or #")
    return parts


def is_allowed_host(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback or addr in LAB_SUBNET


def same_origin_url(base: str, link: str) -> str | None:
    """Resolve `link` (as a browser would) against `base`; None if it leaves base's origin.

    The server chooses media URLs; following one elsewhere would send traffic to an address
    the operator never approved."""
    full = urljoin(base, link)
    b, f = urlsplit(base), urlsplit(full)
    if _origin(f) != _origin(b):
        return None
    return full


def _origin(parts: SplitResult) -> tuple[str, str, int]:
    default = 443 if parts.scheme == "https" else 80
    return (parts.scheme, (parts.hostname or "").lower(), parts.port or default)
