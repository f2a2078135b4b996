"""Who is calling: the key a caller's share of the lookup budget is kept under.

An address as API Gateway reports it (or the viewer's, as a trusted CDN reports it).
IPv4 is one caller per address. An IPv6 client is usually given a whole /64 and may
pick any address in it, so a v6 caller is its /64: one network, one share. An IPv4
address mapped into IPv6 is the IPv4 caller.
"""

from __future__ import annotations


def caller_key(address: str | None) -> str | None:
    """The caller an address belongs to; None for what is no address at all."""
    if not address:
        return None
    # Only a miss spends a share: a hit never pays for this import.
    import ipaddress

    try:
        ip = ipaddress.ip_address(address.strip().split("/")[0].strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)
