"""Who asked: the source address, or behind the CDN the viewer, with proof only."""

from __future__ import annotations

from typing import Any

import pytest

from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.domain.errors import CredentialsUnavailable
from invite_proxy.edges.source_address import SourceAddress

SECRET = "proof-only-cloudfront-knows"


def event(**headers: str) -> dict[str, Any]:
    return {"headers": headers, "requestContext": {"http": {"sourceIp": "203.0.113.5"}}}


def proof(_: Deadline) -> str:
    return SECRET


def test_without_a_cdn_the_headers_mean_nothing() -> None:
    sent = event(**{"x-origin-verify": SECRET, "x-viewer-address": "198.51.100.1"})
    assert SourceAddress().of(sent, NO_DEADLINE) == "203.0.113.5"


def test_with_the_proof_the_viewer_is_the_caller() -> None:
    sent = event(**{"x-origin-verify": SECRET, "x-viewer-address": "198.51.100.1"})
    assert SourceAddress(proof).of(sent, NO_DEADLINE) == "198.51.100.1"


@pytest.mark.parametrize("offered", ["guess", SECRET[:-1], SECRET + "x", ""])
def test_without_the_proof_a_named_viewer_does_not_count(offered: str) -> None:
    sent = event(**{"x-origin-verify": offered, "x-viewer-address": "198.51.100.1"})
    assert SourceAddress(proof).of(sent, NO_DEADLINE) == "203.0.113.5"


@pytest.mark.parametrize("viewer", [None, "", "not an address"])
def test_proof_without_a_readable_viewer_is_the_edges_own(viewer: str | None) -> None:
    """Fail closed: one share for the edge's unnamed requests, never no share at all."""
    headers = {"x-origin-verify": SECRET} | ({"x-viewer-address": viewer} if viewer else {})
    assert SourceAddress(proof).of(event(**headers), NO_DEADLINE) == "203.0.113.5"


def test_an_unreadable_secret_proves_nothing(caplog: pytest.LogCaptureFixture) -> None:
    def unreadable(_: Deadline) -> str:
        raise CredentialsUnavailable(detail="secret down")

    sent = event(**{"x-origin-verify": SECRET, "x-viewer-address": "198.51.100.1"})
    assert SourceAddress(unreadable).of(sent, NO_DEADLINE) == "203.0.113.5"
    assert "CDN origin secret unreadable" in caplog.text
