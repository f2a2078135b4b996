"""Revoker function: runs the revocation rule an EventBridge Scheduler schedule delivers.

The event is the rule itself (the schedule's Input). A bad rule, or an error
worth retrying, fails the invocation, so the scheduler's retry policy and
dead-letter queue see it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from invite_proxy.domain.deadline import Deadline
from invite_proxy.edges.settings import RevokerSettings
from invite_proxy.edges.wiring import rule_runner
from invite_proxy.observability import logger, metrics

settings = RevokerSettings.from_env()
runner = rule_runner(settings)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deadline = Deadline.from_remaining_ms(context.get_remaining_time_in_millis())
    return runner.run_event(event, deadline).as_dict()
