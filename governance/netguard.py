"""Where the portal may send requests and secrets: never to link-local or cloud metadata addresses.

An instance metadata service (169.254.169.254 and friends) hands out the cloud credentials of the machine
the portal runs on; a webhook or connector URL pointing there would make the portal fetch them for whoever
saved it. Such targets are refused unless the deployment allows them (``ALLOW_LINK_LOCAL_TARGETS``).
Host names are resolved, so a name pointing at such an address is refused too; a name that does not
resolve here (it may only resolve inside an agent's network) is let through.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

# Metadata services that are not in the link-local ranges, by address and by name.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("100.100.100.200", "fd00:ec2::254", "169.254.169.254", "169.254.170.2")
)
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data"})


class ForbiddenTarget(ValueError):
    """A link-local or metadata address; the message names the host, never what it resolved to."""


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_link_local or address in METADATA_ADDRESSES


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return []
    out = []
    for info in infos:
        try:
            out.append(ipaddress.ip_address(info[4][0].split("%", 1)[0]))
        except ValueError:
            continue
    return out


def check_host(host: str) -> None:
    """Raise :class:`ForbiddenTarget` when ``host`` (a name or an address) is link-local or a metadata service."""
    if getattr(settings, "ALLOW_LINK_LOCAL_TARGETS", False):
        return
    name = (host or "").strip().strip("[]").rstrip(".").lower()
    if not name:
        return
    if name in METADATA_NAMES:
        forbidden = True
    elif "." in name or ":" in name:  # a bare word ("require", "disabled") is not looked up
        forbidden = any(_forbidden(a) for a in _addresses(name))
    else:  # but an address written as one number (2852039166, 0xa9fea9fe) is what resolvers make of it
        try:
            forbidden = _forbidden(ipaddress.ip_address(socket.inet_aton(name)))
        except OSError:
            forbidden = False
    if forbidden:
        raise ForbiddenTarget(
            f"{host} is a link-local or cloud metadata address; the portal does not connect there "
            "(an operator may allow it with ALLOW_LINK_LOCAL_TARGETS)."
        )


def check_url(url: str) -> None:
    """:func:`check_host` of a URL's host."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return  # not a URL: the field's own validation says so
    check_host(host)
