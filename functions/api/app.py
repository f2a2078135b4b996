"""API function: invite lookups in every shape, and DELETE. Wiring only; the work happens in
invite_proxy.

DELETE sits behind the HttpApi's Lambda authorizer (functions/authorizer), which
puts the admin token's name in the request context.

Routing is by the event's own `routeKey`: API Gateway has already matched the
route, so its routes need a dictionary, not Powertools' resolver, whose package
costs every cold start about 80 ms (its `__init__` imports every resolver).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from invite_proxy.domain.deadline import Deadline
from invite_proxy.domain.errors import AdminRequired, InviteProxyError, UnknownInvite
from invite_proxy.domain.inputs import InviteQuery, card_theme
from invite_proxy.edges import http_responses
from invite_proxy.edges.http_responses import Response
from invite_proxy.edges.settings import ApiSettings
from invite_proxy.edges.wiring import api_services
from invite_proxy.observability import count, logger, metrics

if TYPE_CHECKING:
    from invite_proxy.services.lookup import LookupResult

settings = ApiSettings.from_env()
services = api_services(settings)


def looked_up(event: dict[str, Any], query: InviteQuery, deadline: Deadline) -> LookupResult:
    """Every route's lookup: who asked is worked out only for a miss (behind the CDN it
    reads a secret)."""
    result = services.lookups.lookup(
        query, deadline=deadline, caller=lambda: services.callers.of(event, deadline)
    )
    logger.info("lookup complete")
    return result


def get_invite(event: dict[str, Any], code: str, deadline: Deadline) -> Response:
    query = InviteQuery.parse(code, event.get("queryStringParameters"))
    result = looked_up(event, query, deadline)
    headers = event.get("headers") or {}
    return http_responses.lookup_response(result, headers.get("if-none-match"))


def get_invite_as_discord(event: dict[str, Any], code: str, deadline: Deadline) -> Response:
    """The same lookup, answered as Discord's own route answers it (edges/discord_face.py)."""
    from invite_proxy.edges import discord_face

    query = discord_face.query_of(code, event.get("queryStringParameters"))
    result = looked_up(event, query, deadline)
    headers = event.get("headers") or {}
    return discord_face.invite_response(result, headers.get("if-none-match"))


def get_invite_badge(event: dict[str, Any], code: str, deadline: Deadline) -> Response:
    """The invite's counts as a shields.io endpoint badge (edges/badges.py)."""
    from invite_proxy.edges import badges

    query = InviteQuery.parse(code, {"with_counts": "true"})
    return badges.badge_response(looked_up(event, query, deadline))


def _guild_invite(event: dict[str, Any], deadline: Deadline, *, counts: bool) -> LookupResult:
    from invite_proxy.domain.inputs import GuildCardQuery

    guild_id = str((event.get("pathParameters") or {}).get("guild_id", ""))
    query = GuildCardQuery.parse(guild_id, event.get("queryStringParameters"))
    result = services.lookups.guild_invite(
        query.guild_id,
        with_counts=counts or query.with_counts,
        deadline=deadline,
        caller=lambda: services.callers.of(event, deadline),
    )
    logger.info("lookup complete")
    return result


def get_guild_invite(event: dict[str, Any], _: str, deadline: Deadline) -> Response:
    """A guild's lasting invite (guild mode): the same invite object a lookup of its code
    gives, so a card by guild outlives the invites that come and go."""
    result = _guild_invite(event, deadline, counts=False)
    headers = event.get("headers") or {}
    return http_responses.lookup_response(result, headers.get("if-none-match"))


def get_guild_badge(event: dict[str, Any], _: str, deadline: Deadline) -> Response:
    """A guild's lasting invite as a shields.io endpoint badge (guild mode)."""
    from invite_proxy.edges import badges

    return badges.badge_response(_guild_invite(event, deadline, counts=True))


def get_invite_icon(event: dict[str, Any], code: str, deadline: Deadline) -> Response:
    """The icon of the invite's guild, through the proxy: a page's visitors never ask
    Discord's CDN. Served only while the invite shows it (services/icons.py)."""
    from invite_proxy.domain.icons import IconFile

    file = IconFile.parse(str((event.get("pathParameters") or {}).get("file", "")))
    # The component's own lookup (with counts): an icon after its card costs no other.
    result = looked_up(event, InviteQuery.parse(code, {"with_counts": "true"}), deadline)
    if not result.found:
        raise UnknownInvite()
    data = services.icons().of_invite(json.loads(result.entry.body), file, deadline)
    return http_responses.icon_response(data, file.media_type)


def _card(result: LookupResult, theme: str, deadline: Deadline) -> Response:
    """The image card, its icon embedded (or the initials, if it cannot be had)."""
    from invite_proxy.edges import svg_card

    invite = json.loads(result.entry.body) if result.found else None
    icon = services.icons().still_for(invite, deadline) if invite else None
    return svg_card.card_response(result, invite, theme, icon)


def get_invite_card(event: dict[str, Any], code: str, deadline: Deadline) -> Response:
    """The invite as one SVG image, for READMEs and pages that run no script."""
    params = event.get("queryStringParameters") or {}
    theme = card_theme(params)
    # The lookup the component makes: with counts, and the event it names.
    asked = {k: v for k, v in params.items() if k == "guild_scheduled_event_id"}
    query = InviteQuery.parse(code, {"with_counts": "true", **asked})
    return _card(looked_up(event, query, deadline), theme, deadline)


def get_guild_card(event: dict[str, Any], _: str, deadline: Deadline) -> Response:
    """A guild's lasting invite as one SVG image (guild mode)."""
    theme = card_theme(event.get("queryStringParameters"))
    return _card(_guild_invite(event, deadline, counts=True), theme, deadline)


def delete_invite(event: dict[str, Any], code: str, deadline: Deadline) -> Response:
    authorizer = event.get("requestContext", {}).get("authorizer") or {}
    admin = (authorizer.get("lambda") or {}).get("admin")
    if not admin:  # the route lost its authorizer: fail closed
        raise AdminRequired()
    headers = event.get("headers") or {}
    revocation = services.revocations.revoke_request(
        code,
        headers.get("x-audit-log-reason"),
        actor=str(admin),
        deadline=deadline,
    )
    return http_responses.revocation_response(revocation)


# The routes template.yaml gives this function; the OpenAPI generator reads them here.
ROUTES: dict[str, Callable[[dict[str, Any], str, Deadline], Response]] = {
    "GET /invites/{code}": get_invite,
    "GET /invites/{code}/badge.json": get_invite_badge,
    "GET /invites/{code}/card.svg": get_invite_card,
    "GET /invites/{code}/icons/{file}": get_invite_icon,
    "GET /guilds/{guild_id}/invite": get_guild_invite,
    "GET /guilds/{guild_id}/badge.json": get_guild_badge,
    "GET /guilds/{guild_id}/card.svg": get_guild_card,
    # Discord's own path, for Discord's client libraries pointed at the proxy.
    "GET /api/v10/invites/{code}": get_invite_as_discord,
    "DELETE /invites/{code}": delete_invite,
}


def _as_discord(exc: InviteProxyError, _: dict[str, Any]) -> Response:
    from invite_proxy.edges import discord_face

    return discord_face.error_response(exc)


def _as_badge(exc: InviteProxyError, _: dict[str, Any]) -> Response:
    from invite_proxy.edges import badges

    return badges.error_badge(exc)


def _as_card(exc: InviteProxyError, event: dict[str, Any]) -> Response:
    from invite_proxy.edges import svg_card

    theme = card_theme(event.get("queryStringParameters"), strict=False)
    return svg_card.error_card(exc, theme)


# How a route shows a failure, when not as the proxy's own error envelope: to a Discord
# library as Discord would, to shields.io as a badge it can show, to an <img> as a card.
FAILURES: dict[str, Callable[[InviteProxyError, dict[str, Any]], Response]] = {
    "GET /api/v10/invites/{code}": _as_discord,
    "GET /invites/{code}/badge.json": _as_badge,
    "GET /guilds/{guild_id}/badge.json": _as_badge,
    "GET /invites/{code}/card.svg": _as_card,
    "GET /guilds/{guild_id}/card.svg": _as_card,
}


def answer(event: dict[str, Any], deadline: Deadline) -> Response:
    route_key = str(event.get("routeKey", ""))
    route = ROUTES.get(route_key)
    if route is None:  # API Gateway answers unknown routes itself; this is a wiring mistake
        return http_responses.plain_error(404, "not_found", "No such route.")
    code = str((event.get("pathParameters") or {}).get("code", ""))
    logger.append_keys(route=route_key, code=code)
    try:
        return route(event, code, deadline)
    except InviteProxyError as exc:
        logger.info("request failed", extra={"error_code": exc.code, "detail": exc.detail})
        count("ErrorResponse")
        failure = FAILURES.get(route_key)
        return failure(exc, event) if failure else http_responses.error_response(exc)
    except Exception:
        # Logged with its stack trace for operators; callers never see internals.
        logger.exception("unhandled error")
        count("ErrorResponse")
        if route_key in FAILURES:
            return FAILURES[route_key](InviteProxyError(), event)  # its 500, no internals
        return http_responses.plain_error(500, "internal_error", "Internal error.")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # API Gateway's request id, read directly: the JMESPath query Powertools would run for
    # it is a good part of a hit from memory.
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    # One deadline for everything this request calls: it answers before Lambda stops it.
    deadline = Deadline.from_remaining_ms(context.get_remaining_time_in_millis())
    return answer(event, deadline).for_api_gateway()
