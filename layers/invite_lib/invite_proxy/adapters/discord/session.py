"""The one pooled HTTP session per execution environment, for Discord and its webhooks.

TLS handshakes with Discord are the most expensive part of a miss, so keep-alive matters.
"""

from __future__ import annotations

import requests

SESSION = requests.Session()
