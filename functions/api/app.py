"""API function: GET and DELETE /invites/{code}. Wiring only; the work happens in invite_proxy.

DELETE sits behind the HttpApi's Lambda authorizer (functions/authorizer), which
puts the admin token's name in the request context.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from invite_proxy import http_responses
from invite_proxy.errors import AdminRequired, InviteProxyError
from invite_proxy.models import InviteQuery
from invite_proxy.observability import count, logger, metrics
from invite_proxy.settings import ApiSettings
from invite_proxy.wiring import api_services

settings = ApiSettings.from_env()
services = api_services(settings)
app = APIGatewayHttpResolver()


@app.get("/invites/<code>")
def get_invite(code: str) -> Response[str]:
    event = app.current_event
    logger.append_keys(route=event.route_key, code=code)
    query = InviteQuery.parse(code, event.query_string_parameters)
    result = services.lookups.lookup(query, deadline=services.deadline.at)
    logger.info("lookup complete")
    return http_responses.lookup_response(result, event.headers.get("if-none-match"))


@app.delete("/invites/<code>")
def delete_invite(code: str) -> Response[str]:
    event = app.current_event
    logger.append_keys(route=event.route_key, code=code)
    admin = event.request_context.authorizer.get_lambda.get("admin")
    if not admin:  # the route lost its authorizer: fail closed
        raise AdminRequired()
    revocation = services.revocations.revoke_request(
        code,
        event.headers.get("x-audit-log-reason"),
        actor=str(admin),
        deadline=services.deadline.at,
    )
    return http_responses.revocation_response(revocation)


@app.exception_handler(InviteProxyError)
def domain_error(exc: InviteProxyError) -> Response[str]:
    logger.info("request failed", extra={"error_code": exc.code, "detail": exc.detail})
    count("ErrorResponse")
    return http_responses.error_response(exc)


@app.not_found
def not_found(_: NotFoundError) -> Response[str]:
    return http_responses.plain_error(404, "not_found", "No such route.")


@app.exception_handler(Exception)
def unexpected_error(_: Exception) -> Response[str]:
    # Logged with its stack trace for operators; callers never see internals.
    logger.exception("unhandled error")
    count("ErrorResponse")
    return http_responses.plain_error(500, "internal_error", "Internal error.")


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # One deadline for everything this request calls: it answers before Lambda stops it.
    services.deadline.begin(context.get_remaining_time_in_millis())
    return app.resolve(event, context)
