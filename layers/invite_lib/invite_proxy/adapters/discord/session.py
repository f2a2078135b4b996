"""The one pooled HTTP session per execution environment, for Discord and its webhooks.

TLS handshakes with Discord are the most expensive part of a miss, so keep-alive matters.
"""

from __future__ import annotations

import math

import requests
from urllib3.util import Timeout

SESSION = requests.Session()


def timeout(connect: float, read: float, left: float) -> Timeout:
    """A call's timeouts within the ``left`` seconds it has: the connect and the first
    bytes each within it, and (``total``) the read gets what the connect left of it, not
    a fresh allowance. requests passes urllib3's Timeout through as it is."""
    total = None if math.isinf(left) else left
    return Timeout(connect=min(connect, left), read=min(read, left), total=total)
