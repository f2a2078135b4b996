"""The API's OpenAPI document, generated from the code that answers: `make openapi`.

Nothing here is typed in twice. The routes are the API handler's own
(its `ROUTES` table in functions/api/app.py), checked against template.yaml's
events, which also say which route needs the admin authorizer. Each status and
its error codes come from `http_responses.status_for` over the errors a route
can raise, Retry-After from the errors' own policy, the patterns from the
request models, `X-Cache` from `CacheStatus`, and CORS from the HttpApi.

The document is committed (functions/docs/openapi.json, which the optional docs
function serves as it is) and the test command fails when it differs from what
this module generates. Deployed handlers never build it: Powertools'
`enable_validation` and `enable_swagger` would cost every cold start for it.

    python -m invite_proxy_local.openapi           # write the document
    python -m invite_proxy_local.openapi --check   # exit 1 if the committed one differs
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invite_proxy.domain import errors as e
from invite_proxy.domain.inputs import (
    AUDIT_REASON_HEADER_MAX_LENGTH,
    AUDIT_REASON_HEADER_PATTERN,
    INVITE_CODE_PATTERN,
    SNOWFLAKE_PATTERN,
)
from invite_proxy.edges import discord_face
from invite_proxy.edges.http_responses import status_for
from invite_proxy.services.lookup import CacheStatus
from invite_proxy_local.template import REPO_ROOT, Template

DOCUMENT_PATH = REPO_ROOT / "functions" / "docs" / "openapi.json"
APP_PATH = REPO_ROOT / "functions" / "api" / "app.py"
API_FUNCTION = "ApiFunction"

# What each route can answer with, besides success. The lookup never raises
# PermissionDenied or CacheEvictionFailed; only public lookups spend the budget or
# wait on another instance's fetch. A status's codes are every code listed here
# that status_for maps to it.
ROUTE_ERRORS: dict[str, tuple[type[e.InviteProxyError], ...]] = {
    "GET": (
        e.InvalidInput,
        discord_face.InvalidFormBody,  # the Discord face's 400, naming each parameter
        e.UnknownInvite,
        e.DiscordRateLimited,
        e.DiscordBlocked,
        e.DiscordUnavailable,
        e.DiscordTimeout,
        e.CredentialsUnavailable,
        e.BudgetExhausted,
        e.CallerShareExhausted,
        e.LookupInProgress,
        e.LookupRecentlyFailed,
        e.DiscordUnauthorized,
        e.DiscordMissingPermissions,
        e.DiscordServerError,
        e.DiscordError,
    ),
    "DELETE": (
        e.InvalidInput,
        e.AdminRequired,
        e.PermissionDenied,
        e.UnknownInvite,
        e.DiscordRateLimited,
        e.DiscordBlocked,
        e.DiscordUnavailable,
        e.DiscordTimeout,
        e.CredentialsUnavailable,
        e.CacheEvictionFailed,
        e.DiscordUnauthorized,
        e.DiscordMissingPermissions,
        e.DiscordServerError,
        e.DiscordError,
    ),
}
# The icon route: a lookup's errors, and the icon's own.
ROUTE_ERRORS["ICON"] = (*ROUTE_ERRORS["GET"], e.UnknownIcon, e.IconUnavailable)

# API Gateway answers these itself, in its own {"message": ...} shape: a route's
# authorizer (401 with no Authorization header, 403 when it says no), its
# throttling (429), and a function that crashed or timed out (500). A 403 is the
# gateway's on the admin route only; GET has no 403 of the proxy's either.
GATEWAY_MESSAGES = {
    401: "Unauthorized",
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
REASONS = {
    200: "OK",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class AppRoute:
    method: str
    path: str  # API Gateway's form: /invites/{code}
    function: str  # the Python function that answers it


def app_routes(path: Path = APP_PATH) -> list[AppRoute]:
    """The routes the handler answers: the keys of its `ROUTES` table, read from its source.

    Reading the source, not importing it, keeps the handler's settings, clients and
    secrets out of a build step.
    """
    for node in ast.walk(ast.parse(path.read_text())):
        target: ast.expr | None = None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if not (isinstance(target, ast.Name) and target.id == "ROUTES"):
            continue
        table = node.value  # type: ignore[attr-defined]
        if not isinstance(table, ast.Dict):
            raise ValueError(f"{path.name}: ROUTES must be a literal dict")
        routes = []
        for key, value in zip(table.keys, table.values, strict=True):
            if not (isinstance(key, ast.Constant) and isinstance(value, ast.Name)):
                raise ValueError(f"{path.name}: ROUTES maps route keys to functions")
            method, route_path = str(key.value).split(" ", 1)
            routes.append(AppRoute(method, route_path, value.id))
        return routes
    raise ValueError(f"{path.name} has no ROUTES table")


def _version() -> str:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return str(project["version"])


def _header(description: str, schema: dict[str, Any], *, required: bool) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


CACHE_CONTROL_NO_STORE = _header(
    "`no-store`: an error is never cached.", {"type": "string", "const": "no-store"}, required=True
)
X_CACHE = _header(
    "Where the answer came from: `HIT` (a fresh cached copy), `MISS` (fetched from "
    "Discord now), `STALE` (an older copy: Discord failed, or another instance is "
    "refreshing it).",
    {"type": "string", "enum": [status.value for status in CacheStatus]},
    required=True,
)
LOOKUP_CACHE_CONTROL = _header(
    "`public, max-age=N`, N being the seconds of freshness left; "
    "`public, max-age=0, must-revalidate` on `STALE`.",
    {"type": "string", "pattern": r"^public, max-age=[0-9]+(, must-revalidate)?$"},
    required=True,
)
ETAG = _header(
    "A strong validator of Discord's body; send it back in `If-None-Match`.",
    {"type": "string", "pattern": '^"[^"]+"$'},
    required=True,
)
VARY = _header(
    "`Origin`: CORS answers differ by origin.", {"type": "string", "const": "Origin"}, required=True
)


def _retry_after(required: bool) -> dict[str, Any]:
    note = (
        "Always sent."
        if required
        else "Sent with the proxy's own errors of this status that can pass; "
        "API Gateway's throttling answer has none."
    )
    return _header(
        f"Seconds to wait before trying again. {note}",
        {"type": "integer", "minimum": 1},
        required=required,
    )


def _error_schema(codes: list[str]) -> dict[str, Any]:
    return {
        "allOf": [
            {"$ref": "#/components/schemas/Error"},
            {
                "type": "object",
                "properties": {
                    "error": {"type": "object", "properties": {"code": {"enum": codes}}}
                },
            },
        ]
    }


def _error_responses(method: str) -> dict[int, dict[str, Any]]:
    """Each status the route's errors map to, with its codes and headers."""
    by_status: dict[int, list[type[e.InviteProxyError]]] = {}
    for error in ROUTE_ERRORS[method]:
        by_status.setdefault(status_for(_instance(error)), []).append(error)
    by_status.setdefault(500, []).append(e.InviteProxyError)  # any unexpected failure
    responses: dict[int, dict[str, Any]] = {}
    for status, classes in sorted(by_status.items()):
        codes = sorted({cls.code for cls in classes})
        schema = _error_schema(codes)
        headers: dict[str, Any] = {"Cache-Control": CACHE_CONTROL_NO_STORE}
        if any(cls.retry_later for cls in classes):
            gateway_too = status in GATEWAY_MESSAGES
            headers["Retry-After"] = _retry_after(
                all(cls.retry_later for cls in classes) and not gateway_too
            )
        if status in GATEWAY_MESSAGES:
            schema = {"anyOf": [schema, {"$ref": "#/components/schemas/GatewayMessage"}]}
            headers["Cache-Control"] = dict(CACHE_CONTROL_NO_STORE, required=False)
        listed = ", ".join(f"`{code}`" for code in codes)
        responses[status] = {
            "description": f"{REASONS[status]}: {listed}.",
            "headers": headers,
            "content": {"application/json": {"schema": schema}},
        }
    return responses


def _instance(error: type[e.InviteProxyError]) -> e.InviteProxyError:
    if issubclass(error, e.DiscordRateLimited):
        from invite_proxy.domain.rate_limits import RateLimit

        return error(retry_after=1.0, rate_limit=RateLimit())
    return error()


def _gateway_response(status: int, why: str) -> dict[str, Any]:
    return {
        "description": f"{REASONS[status]}, from API Gateway itself: {why}",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/GatewayMessage"}}
        },
    }


CODE_PARAMETER = {
    "name": "code",
    "in": "path",
    "required": True,
    "description": "The invite code: 2 to 32 letters, digits or `-`. Anything else is a 400.",
    "schema": {"type": "string", "pattern": INVITE_CODE_PATTERN},
    "examples": {
        "sample": {"summary": "`make run`'s permanent sample invite", "value": "proxy-demo"}
    },
}
SNOWFLAKE = {"type": "string", "pattern": SNOWFLAKE_PATTERN}


def _get_operation() -> dict[str, Any]:
    responses = _error_responses("GET")
    unknown = responses[404]
    unknown["headers"].update({"X-Cache": X_CACHE, "Cache-Control": LOOKUP_CACHE_CONTROL})
    unknown["description"] = (
        "Not Found: `unknown_invite`. Discord does not know the code; remembered for "
        "NEGATIVE_CACHE_SECONDS, so this is cacheable. In guild mode (ALLOWED_GUILD_IDS), "
        "no allowed guild lists the code: cacheable only until the lists may be read "
        "again (`max-age`, at most GUILD_LIST_MIN_REFRESH_SECONDS)."
    )
    responses[200] = {
        "description": "The invite exactly as Discord returned it, unknown fields included.",
        "headers": {
            "ETag": ETAG,
            "Cache-Control": LOOKUP_CACHE_CONTROL,
            "X-Cache": X_CACHE,
            "Vary": VARY,
        },
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Invite"}}},
    }
    responses[304] = {
        "description": "`If-None-Match` matched the current copy's ETag; no body.",
        "headers": {"ETag": ETAG, "Cache-Control": LOOKUP_CACHE_CONTROL, "X-Cache": X_CACHE},
    }
    return {
        "operationId": "getInvite",
        "summary": "Look up an invite",
        "description": (
            "Answered from the proxy's DynamoDB cache while its copy is fresh, and from "
            "Discord otherwise: in guild mode (ALLOWED_GUILD_IDS) from each allowed guild's "
            "own invite list, never a call per code. Public: no token. Browsers may call it "
            "from the allowed origins (CORS)."
        ),
        "tags": ["invites"],
        "parameters": [
            CODE_PARAMETER,
            {
                "name": "with_counts",
                "in": "query",
                "description": "Include `approximate_member_count` and "
                "`approximate_presence_count` (`1`/`0` are accepted too).",
                "schema": {"type": "boolean"},
            },
            {
                "name": "guild_scheduled_event_id",
                "in": "query",
                "description": "Include this scheduled event of the invite's guild, "
                "as `guild_scheduled_event`.",
                "schema": SNOWFLAKE,
            },
            {
                "name": "with_expiration",
                "in": "query",
                "deprecated": True,
                "description": "Accepted and ignored, whatever its value: Discord removed it, "
                "and `expires_at` is always present.",
                "schema": {"type": "string"},
            },
            {
                "name": "If-None-Match",
                "in": "header",
                "description": "An ETag from an earlier answer; a match is a 304.",
                "schema": {"type": "string"},
            },
        ],
        "responses": _ordered(responses),
    }


def _delete_operation() -> dict[str, Any]:
    responses = _error_responses("DELETE")
    responses[200] = {
        "description": "Revoked: the deleted invite as Discord returned it. Every cached "
        "copy is gone.",
        "headers": {"Cache-Control": CACHE_CONTROL_NO_STORE},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Invite"}}},
    }
    responses[401] = _gateway_response(401, "no `Authorization` header.")
    responses[403]["description"] = (
        'Forbidden: API Gateway\'s `{"message": "Forbidden"}` when the token is not an admin '
        "token; `missing_permissions` when the bot may not delete this invite; `forbidden` "
        "if the route ever lost its authorizer (the function fails closed)."
    )
    return {
        "operationId": "revokeInvite",
        "summary": "Revoke (delete) an invite",
        "description": "Deletes the invite on Discord and every cached copy of it. Needs an "
        "admin token (`make admin-token`).",
        "tags": ["admin"],
        "security": [{"adminToken": []}],
        "parameters": [
            CODE_PARAMETER,
            {
                "name": "X-Audit-Log-Reason",
                "in": "header",
                "description": "Why, for the guild's audit log: URL-encoded UTF-8, 1 to 512 "
                "characters once decoded, no control characters. (The schema stops at 512 "
                "encoded characters; a longer encoding of at most 512 characters is accepted.)",
                "schema": {
                    "type": "string",
                    "maxLength": AUDIT_REASON_HEADER_MAX_LENGTH,
                    "pattern": AUDIT_REASON_HEADER_PATTERN,
                },
            },
        ],
        "responses": _ordered(responses),
    }


def _ordered(responses: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return {str(status): responses[status] for status in sorted(responses)}


def _schemas() -> dict[str, Any]:
    nullable_string = {"type": ["string", "null"]}
    return {
        "Invite": {
            "type": "object",
            "description": "An invite as Discord's GET /invites/{code} returns it. Discord "
            "adds fields over time; the proxy passes every field through untouched.",
            "required": ["code"],
            "additionalProperties": True,
            "properties": {
                "code": {"type": "string"},
                "type": {"type": "integer", "description": "0 guild, 1 group DM, 2 friend"},
                "expires_at": {
                    "type": ["string", "null"],
                    "format": "date-time",
                    "description": "When the invite expires; null for a permanent one.",
                },
                "guild_id": SNOWFLAKE,
                "guild": {"$ref": "#/components/schemas/InviteGuild"},
                "channel": {
                    "type": ["object", "null"],
                    "required": ["id"],
                    "additionalProperties": True,
                    "properties": {
                        "id": SNOWFLAKE,
                        "type": {"type": "integer"},
                        "name": nullable_string,
                    },
                },
                "inviter": {"type": "object", "additionalProperties": True},
                "approximate_member_count": {"type": ["integer", "null"]},
                "approximate_presence_count": {"type": ["integer", "null"]},
                "guild_scheduled_event": {"$ref": "#/components/schemas/ScheduledEvent"},
                "flags": {"type": "integer"},
            },
        },
        "InviteGuild": {
            "type": "object",
            "required": ["id", "name"],
            "additionalProperties": True,
            "properties": {
                "id": SNOWFLAKE,
                "name": {"type": "string"},
                "icon": {
                    **nullable_string,
                    "description": "An icon hash for Discord's CDN; `a_` starts an animated one.",
                },
                "splash": nullable_string,
                "banner": nullable_string,
                "description": nullable_string,
                "features": {"type": "array", "items": {"type": "string"}},
                "vanity_url_code": nullable_string,
            },
        },
        "ScheduledEvent": {
            "type": "object",
            "required": ["id", "name", "scheduled_start_time"],
            "additionalProperties": True,
            "properties": {
                "id": SNOWFLAKE,
                "guild_id": SNOWFLAKE,
                "name": {"type": "string"},
                "description": nullable_string,
                "scheduled_start_time": {"type": "string", "format": "date-time"},
                "scheduled_end_time": {"type": ["string", "null"], "format": "date-time"},
                "status": {"type": "integer"},
                "entity_type": {"type": "integer"},
                "user_count": {"type": "integer"},
            },
        },
        "Error": {
            "type": "object",
            "description": "The proxy's error envelope. `message` is safe to show; it never "
            "holds Discord's body or internals.",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "additionalProperties": False,
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                    },
                }
            },
        },
        "Badge": {
            "type": "object",
            "description": "shields.io's endpoint badge, schemaVersion 1.",
            "required": ["schemaVersion", "label", "message", "color"],
            "properties": {
                "schemaVersion": {"const": 1},
                "label": {"type": "string"},
                "message": {"type": "string"},
                "color": {"type": "string"},
                "namedLogo": {"type": "string"},
                "logoColor": {"type": "string"},
                "isError": {"type": "boolean"},
                "cacheSeconds": {"type": "integer", "minimum": 0},
            },
        },
        "DiscordError": {
            "type": "object",
            "description": "Discord's error body: `code` is Discord's (10006: unknown invite; "
            "0: no code of its own).",
            "required": ["code", "message"],
            "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
        },
        "DiscordFormError": {
            "type": "object",
            "description": "Discord's 50035: `errors` names each parameter it could not read.",
            "required": ["code", "message", "errors"],
            "properties": {
                "code": {"const": 50035},
                "message": {"type": "string"},
                "errors": {"type": "object"},
            },
        },
        "DiscordRateLimit": {
            "type": "object",
            "description": "Discord's 429: wait `retry_after` seconds; never `global` here.",
            "required": ["message", "retry_after", "global"],
            "properties": {
                "message": {"type": "string"},
                "retry_after": {"type": "number"},
                "global": {"const": False},
                "code": {"type": "integer"},
            },
        },
        "GatewayMessage": {
            "type": "object",
            "description": "API Gateway's own answer, before any function ran.",
            "required": ["message"],
            "properties": {"message": {"type": "string"}},
        },
    }


def _discord_get_operation() -> dict[str, Any]:
    """Discord's own route: its statuses are what edges/discord_face.py answers for each
    error the lookup raises, in Discord's bodies."""
    by_status: dict[int, tuple[str, dict[str, Any]]] = {}
    for error in ROUTE_ERRORS["GET"]:
        status = discord_face.error_response(_instance(error)).status_code
        by_status[status] = _DISCORD_RESPONSES.get(status, _DISCORD_RESPONSES[0])
    by_status[500] = _DISCORD_RESPONSES[0]  # any unexpected failure
    responses: dict[int, dict[str, Any]] = {}
    for status, (schema, headers) in sorted(by_status.items()):
        content_schema: dict[str, Any] = {"$ref": f"#/components/schemas/{schema}"}
        header_objects: dict[str, Any] = {"Cache-Control": CACHE_CONTROL_NO_STORE} | headers
        if status in GATEWAY_MESSAGES:
            content_schema = {
                "anyOf": [content_schema, {"$ref": "#/components/schemas/GatewayMessage"}]
            }
            header_objects = {
                name: dict(header, required=False) for name, header in header_objects.items()
            }
        responses[status] = {
            "description": f"{REASONS[status]}, in Discord's own body.",
            "headers": header_objects,
            "content": {"application/json": {"schema": content_schema}},
        }
    found = _get_operation()["responses"]
    responses[200], responses[304] = found["200"], found["304"]
    # A lookup's 404 carries its cache headers; a code that cannot be one is no-store.
    responses[404]["headers"] = {
        "Cache-Control": {"required": True, "schema": {"type": "string"}},
        "X-Cache": dict(found["404"]["headers"]["X-Cache"], required=False),
    }
    return {
        "operationId": "getInviteAsDiscord",
        "summary": "Look up an invite, as Discord's own route answers",
        "description": (
            "The same lookup as `GET /invites/{code}` (the same cache, guard and "
            "protections), answered as Discord's `GET /api/v10/invites/{code}` does, so "
            "Discord's client libraries pointed at the proxy's base URL (`<api>/api/v10`) "
            "resolve invites with no token: Discord's error bodies (10006 for an unknown "
            "invite, 50035 for a query it cannot read, a code that cannot be one included), "
            'and every "not now" (a rate limit, a caller\'s spent share, the lookup '
            "budget, a fetch under way) as Discord's 429 with `retry_after`."
        ),
        "tags": ["discord"],
        "parameters": [
            {**CODE_PARAMETER, "schema": {"type": "string"}},
            *_get_operation()["parameters"][1:],
        ],
        "responses": _ordered(responses),
    }


_RETRY_AFTER_HEADER = {"description": "Seconds to wait", "schema": {"type": "integer"}}
# By status: the schema of Discord's body, and the headers it comes with (0: the rest).
_DISCORD_RESPONSES: dict[int, tuple[str, dict[str, Any]]] = {
    0: ("DiscordError", {}),
    400: ("DiscordFormError", {}),
    404: ("DiscordError", {}),
    429: (
        "DiscordRateLimit",
        {
            "Retry-After": dict(_RETRY_AFTER_HEADER, required=True),
            "Via": {"description": "The proxy, by name", "schema": {"type": "string"}},
        },
    ),
}


def _badge_operation() -> dict[str, Any]:
    found = _get_operation()["responses"]
    return {
        "operationId": "getInviteBadge",
        "summary": "An invite as a shields.io endpoint badge",
        "description": (
            "The same lookup as `GET /invites/{code}?with_counts=true`, in shields.io's "
            "endpoint format: `https://img.shields.io/endpoint?url=<this URL>`. Always a "
            "200 shields.io can read: an unknown invite is an `invalid invite` badge, and "
            "a moment the proxy cannot say is an `unavailable` badge with no-store."
        ),
        "tags": ["invites"],
        "parameters": [{**CODE_PARAMETER, "schema": {"type": "string"}}],
        "responses": {
            "200": {
                "description": "The badge. `cacheSeconds` is the proxy's freshness.",
                "headers": {"Cache-Control": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Badge"}}},
            },
            "429": found["429"] if "429" in found else _gateway_response(429, "throttled."),
            "500": found["500"],
        },
    }


def _guild_invite_operation() -> dict[str, Any]:
    lookup = _get_operation()
    responses = dict(lookup["responses"])
    responses["404"] = dict(
        responses["404"],
        description="Not Found: `unknown_invite`. The guild has no lasting invite, is not "
        "one the proxy serves, or the proxy is not in guild mode (`no-store`); or its "
        "invite's lookup found none (that lookup's cache headers).",
        headers={
            "Cache-Control": {"required": True, "schema": {"type": "string"}},
            "X-Cache": dict(responses["404"]["headers"]["X-Cache"], required=False),
        },
    )
    return {
        "operationId": "getGuildInvite",
        "summary": "A guild's lasting invite",
        "description": (
            "Guild mode: the invite a card of this guild shows, so that it outlives any "
            "one invite: its vanity code, the code GUILD_INVITE_CODES names for it, or its "
            "most used invite that never expires. Answered as `GET /invites/{code}` answers "
            "a lookup of that code (the same object, cache and headers)."
        ),
        "tags": ["invites"],
        "parameters": [
            {
                "name": "guild_id",
                "in": "path",
                "required": True,
                "description": "The guild's id.",
                "schema": SNOWFLAKE,
            },
            lookup["parameters"][1],  # with_counts
            lookup["parameters"][-1],  # If-None-Match
        ],
        "responses": responses,
    }


def _guild_badge_operation() -> dict[str, Any]:
    badge = _badge_operation()
    return dict(
        badge,
        operationId="getGuildBadge",
        summary="A guild's lasting invite as a shields.io endpoint badge",
        description=(
            "Guild mode: the badge of `GET /guilds/{guild_id}/invite`'s invite, so a "
            "README's badge outlives any one invite. A guild with none is an `invalid "
            "invite` badge."
        ),
        # Any guild id: one that cannot be a snowflake is an `invalid invite` badge too.
        parameters=[{**_guild_invite_operation()["parameters"][0], "schema": {"type": "string"}}],
    )


SVG_HEADERS = {
    "Content-Security-Policy": {
        "description": "`default-src 'none'; img-src data:`: opened directly, the image "
        "runs nothing and loads nothing",
        "required": True,
        "schema": {"type": "string"},
    },
    "X-Content-Type-Options": {"required": True, "schema": {"const": "nosniff"}},
    "Cache-Control": {"required": True, "schema": {"type": "string"}},
    "X-Cache": {
        "description": "Where the lookup behind the card was answered from (not on a 400)",
        "schema": {"type": "string", "enum": ["HIT", "MISS", "STALE"]},
    },
}
SVG_CONTENT = {"image/svg+xml": {"schema": {"type": "string"}}}
THEME_PARAMETER = {
    "name": "theme",
    "in": "query",
    "required": False,
    "description": "`dark` (the default, as Discord's own card) or `light`; else a 400.",
    "schema": {"type": "string", "enum": ["dark", "light"], "default": "dark"},
}


def _card_responses() -> dict[str, Any]:
    return {
        "200": {
            "description": "The card. An invite the proxy cannot find (unknown, expired, "
            "revoked) is the `Invalid invite` card, kept as long as that answer is fresh; a "
            "moment the proxy cannot say (Discord failing, a spent share) is the `Invite "
            "unavailable` card with `no-store` (and `Retry-After` when there is one).",
            "headers": SVG_HEADERS,
            "content": SVG_CONTENT,
        },
        "400": {
            "description": "A card saying what the request got wrong (a code that cannot be "
            "one, an unknown theme), with `no-store`.",
            "headers": SVG_HEADERS,
            "content": SVG_CONTENT,
        },
        "429": _gateway_response(429, "throttled."),
    }


def _card_operation() -> dict[str, Any]:
    lookup = _get_operation()
    event = next(p for p in lookup["parameters"] if p["name"] == "guild_scheduled_event_id")
    return {
        "operationId": "getInviteCard",
        "summary": "An invite as one SVG image, for READMEs and pages that run no script",
        "description": (
            "The card `<discord-invite-card>` draws, as one self-contained image: the "
            "guild's icon embedded, its name, online and member counts, the channel, when "
            "the invite expires (UTC), its scheduled event, and a Join label. Every name "
            "is escaped and cut to its box. The same lookup as `GET /invites/{code}"
            "?with_counts=true`, so the same cache, guard and protections; `Cache-Control` "
            "follows the invite's freshness."
        ),
        "tags": ["invites"],
        "parameters": [CODE_PARAMETER, THEME_PARAMETER, event],
        "responses": _card_responses(),
    }


def _guild_card_operation() -> dict[str, Any]:
    return {
        "operationId": "getGuildCard",
        "summary": "A guild's lasting invite as one SVG image",
        "description": (
            "Guild mode: the card of `GET /guilds/{guild_id}/invite`'s invite, so an "
            "embedded image outlives any one invite. A guild with none is the `Invalid "
            "invite` card."
        ),
        "tags": ["invites"],
        "parameters": [_guild_invite_operation()["parameters"][0], THEME_PARAMETER],
        "responses": _card_responses(),
    }


def _icon_operation() -> dict[str, Any]:
    errors = {str(status): response for status, response in _error_responses("ICON").items()}
    image = {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
    return {
        "operationId": "getInviteIcon",
        "summary": "The icon of an invite's guild, through the proxy",
        "description": (
            "So that a page's visitors never ask Discord's CDN for it. Served only while "
            "the invite shows this icon (the same lookup as `GET /invites/{code}`), fetched "
            "from Discord's CDN once at 128 pixels, kept by its hash, and answered as "
            "immutable: a new icon is a new hash, so a new URL. `<hash>.png` for any icon "
            "(an animated one as a still), `<hash>.gif` for an animated one (`a_<hash>`)."
        ),
        "tags": ["invites"],
        "parameters": [
            CODE_PARAMETER,
            {
                "name": "file",
                "in": "path",
                "required": True,
                "description": "`<hash>.png`, or `a_<hash>.gif`: the hash is the invite's "
                "`guild.icon`. Anything else is a 400.",
                "schema": {
                    "type": "string",
                    "pattern": r"^(a_[0-9a-f]{32}\.(png|gif)|[0-9a-f]{32}\.png)$",
                },
            },
        ],
        "responses": {
            "200": {
                "description": "The icon, `public, max-age=31536000, immutable`.",
                "headers": {
                    "Cache-Control": {"required": True, "schema": {"type": "string"}},
                    "X-Content-Type-Options": {"schema": {"const": "nosniff"}},
                    "Content-Security-Policy": {"schema": {"const": "default-src 'none'"}},
                },
                "content": {"image/png": image, "image/gif": image},
            },
            **{status: errors[status] for status in errors if status not in ("200", "304")},
            "404": {
                "description": "Not Found: `unknown_invite` (no such invite), or "
                "`unknown_icon` (not the icon its guild shows now), with `no-store`.",
                "headers": {"Cache-Control": CACHE_CONTROL_NO_STORE},
                "content": {
                    "application/json": {
                        "schema": _error_schema(["unknown_icon", "unknown_invite"])
                    }
                },
            },
        },
    }


OPERATIONS = {
    "GET /invites/{code}/card.svg": _card_operation,
    "GET /invites/{code}/icons/{file}": _icon_operation,
    "GET /guilds/{guild_id}/card.svg": _guild_card_operation,
    "GET /invites/{code}": _get_operation,
    "GET /guilds/{guild_id}/badge.json": _guild_badge_operation,
    "GET /guilds/{guild_id}/invite": _guild_invite_operation,
    "GET /invites/{code}/badge.json": _badge_operation,
    "DELETE /invites/{code}": _delete_operation,
    "GET /api/v10/invites/{code}": _discord_get_operation,
}


def build(template: Template | None = None) -> dict[str, Any]:
    template = template or Template()
    routes = check_routes(template)
    cors = template.http_api_cors()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation = OPERATIONS[f"{route.method} {route.path}"]
        paths.setdefault(route.path, {})[route.method.lower()] = operation()
    exposed = ", ".join(f"`{h}`" for h in cors.expose_headers) if cors else "none"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Discord invite proxy",
            "version": _version(),
            "summary": "Discord invite lookups for web frontends, and admin revocation.",
            "description": (
                "Served by the SAM application in this repository. Browsers call it "
                "from the origins in its AllowedOrigins parameter; API Gateway answers "
                f"CORS preflights itself and exposes these headers: {exposed}. Routes "
                'that do not exist are API Gateway\'s `404 {"message": "Not Found"}`.'
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": [
            {"name": "invites", "description": "Public invite lookups."},
            {"name": "admin", "description": "Needs an admin token."},
            {"name": "discord", "description": "Discord's own routes, for its libraries."},
        ],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An admin token from `make admin-token`; its SHA-256 "
                    "hash is in the AdminTokensSecretArn secret.",
                }
            },
        },
    }


class RoutesDisagree(Exception):
    pass


def check_routes(template: Template) -> list[AppRoute]:
    """The API function's routes, when template.yaml and the handler agree on them."""
    declared = {(r.method, r.path): r for r in template.routes() if r.function == API_FUNCTION}
    registered = {(r.method, r.path): r for r in app_routes()}
    if declared.keys() != registered.keys():
        raise RoutesDisagree(
            f"template.yaml routes {sorted(declared)} but {APP_PATH.name} registers "
            f"{sorted(registered)}"
        )
    for route in declared.values():
        if f"{route.method} {route.path}" not in OPERATIONS:
            raise RoutesDisagree(f"no OpenAPI operation is written for {route.route_key}")
        wants_auth = route.method == "DELETE"
        if (route.authorizer is not None) != wants_auth:
            raise RoutesDisagree(f"{route.route_key}: the admin authorizer is only for DELETE")
    return sorted(registered.values(), key=lambda r: (r.path, r.method != "GET"))


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def document_paths(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed file differs")
    args = parser.parse_args(list(argv) if argv is not None else None)
    text = render(build())
    relative = DOCUMENT_PATH.relative_to(REPO_ROOT)
    if args.check:
        if not DOCUMENT_PATH.exists() or DOCUMENT_PATH.read_text() != text:
            print(f"{relative} is out of date with the code: run 'make openapi'", file=sys.stderr)
            return 1
        print(f"{relative} is up to date")
        return 0
    DOCUMENT_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOCUMENT_PATH.write_text(text)
    print(f"wrote {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
