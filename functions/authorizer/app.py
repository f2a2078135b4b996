"""HttpApi Lambda authorizer for the admin routes: Authorization: Bearer <admin token>.

Simple responses (payload 2.0): {"isAuthorized": ..., "context": {"admin": <token name>}}.
API Gateway itself answers 401 when the Authorization header is missing, and 403
when this says no. The token is never logged.
"""

from __future__ import annotations

from typing import Any

# The module itself: the data_classes package would import every event class.
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from invite_proxy.domain.deadline import Deadline
from invite_proxy.domain.errors import CredentialsUnavailable
from invite_proxy.edges.settings import AuthorizerSettings
from invite_proxy.edges.wiring import admin_verifier
from invite_proxy.observability import count, logger, metrics

settings = AuthorizerSettings.from_env()
verifier = admin_verifier(settings)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deadline = Deadline.from_remaining_ms(context.get_remaining_time_in_millis())
    request = APIGatewayAuthorizerEventV2(event)
    logger.append_keys(route=request.route_key, source_ip=request.request_context.http.source_ip)
    try:
        admin = verifier.identify(request.headers.get("authorization"), deadline)
    except CredentialsUnavailable as exc:
        # Fail closed: API Gateway turns the error into a 500, and nothing gets through.
        count("AdminAuthError")
        logger.error("admin tokens unreadable", extra={"detail": exc.detail})
        raise
    if admin is None:
        count("AdminAuthDenied")
        logger.warning("admin token rejected")
        return {"isAuthorized": False}
    count("AdminAuthAccepted")
    logger.info("admin token accepted", extra={"admin": admin})
    return {"isAuthorized": True, "context": {"admin": admin}}
