"""Who asked: the client address a request came from.

Straight to API Gateway it is ``requestContext.http.sourceIp`` (payload format 2.0),
which a client cannot set. Behind the optional CDN that is CloudFront's own address,
shared by every viewer of an edge, so the stack's CloudFront Function puts the
viewer's address in ``X-Viewer-Address`` and CloudFront adds a secret in
``X-Origin-Verify`` (it overwrites any a viewer sent). Anyone can send both headers
straight to the API, so the viewer's address counts only with the secret. A request
with the secret but no readable viewer address is its edge's: one share for all such
requests of that edge, never none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from invite_proxy import observability as obs
from invite_proxy.domain.callers import caller_key
from invite_proxy.domain.errors import CredentialsUnavailable

if TYPE_CHECKING:
    from invite_proxy.adapters.secrets import SecretSource
    from invite_proxy.domain.deadline import Deadline

VIEWER_ADDRESS = "x-viewer-address"
ORIGIN_VERIFY = "x-origin-verify"


class SourceAddress:
    def __init__(self, cdn_proof: SecretSource | None = None) -> None:
        self._cdn_proof = cdn_proof  # None: no CDN in front, its headers mean nothing

    def of(self, event: Mapping[str, Any], deadline: Deadline) -> str | None:
        headers = event.get("headers") or {}
        offered = headers.get(ORIGIN_VERIFY)
        http = (event.get("requestContext") or {}).get("http") or {}
        source = http.get("sourceIp")
        address = source if isinstance(source, str) and source else None
        if self._cdn_proof is not None and offered and self._proven(offered, deadline):
            viewer = headers.get(VIEWER_ADDRESS)
            if isinstance(viewer, str) and caller_key(viewer) is not None:
                return viewer.strip()
        return address

    def _proven(self, offered: str, deadline: Deadline) -> bool:
        assert self._cdn_proof is not None
        try:
            expected = self._cdn_proof(deadline)
        except CredentialsUnavailable as exc:
            # Unproven, then: the share is CloudFront's edge's, never a header's choice.
            obs.logger.warning("CDN origin secret unreadable", extra={"detail": exc.detail})
            return False
        import hmac  # only behind the CDN: a request straight to the API never pays for it

        return bool(expected) and hmac.compare_digest(offered.encode(), str(expected).encode())
