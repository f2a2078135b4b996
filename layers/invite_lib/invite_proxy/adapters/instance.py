"""This execution environment's own id: its fetch leases and bucket probes are told apart by it.

Two instances with one id would each take the other's lease for its own. SnapStart
restores many environments from one snapshot, so edges/snapshots.py gives each
restored one a new id (``renew``).
"""

from __future__ import annotations

import secrets

_instance_id = secrets.token_hex(8)


def instance_id() -> str:
    return _instance_id


def renew() -> None:
    global _instance_id
    _instance_id = secrets.token_hex(8)
