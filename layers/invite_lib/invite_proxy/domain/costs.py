"""What each outside call can cost, from the timeouts in force: the one place time is planned from.

Deadlines hold every call to the time there is: a table call that might not finish
is skipped (or, for an eviction, waited for only until the deadline), a Discord call
or a secret read is given up at it. So these figures are not what keeps an
invocation in time; they say what work is worth starting. Two paces are counted:

* a call's *worst case*, every attempt timing out (``aws_call_seconds``,
  ``discord_attempt_seconds``): what a call may take before it fails;
* a *slow* DynamoDB or Secrets Manager call, ``SLOW_CALL_SECONDS``: what a call to a
  service that answers, but slowly, takes. A step is planned at this pace: a
  table failing outright is skipped by its circuit breaker after its first
  failure, and one slower still is cut short by the deadline, which is reported
  (``cache_eviction_failed``), never late.

Settings read these with their own timeouts; the adapters and services that make
the calls read the counts from here.
"""

from __future__ import annotations

# Kept back from Lambda's timeout: the half second every invocation must leave unused, and
# time to answer after the last call gave up (its error handled, logs and metrics written).
ANSWER_RESERVE_SECONDS = 0.5 + 0.3

# -- AWS (DynamoDB, Secrets Manager) ---------------------------------------------------
AWS_ATTEMPTS = 2  # the first try and one retry (botocore's max_attempts would count retries)
# Standard retry mode sleeps at most 1 s (times jitter) before the second attempt.
AWS_RETRY_BACKOFF_SECONDS = 1.0
# A call to a service that answers, but slowly: DynamoDB's own latency is a few milliseconds.
SLOW_CALL_SECONDS = 0.25
# Secrets are read once per cache period and only when needed, so they get more than DynamoDB.
SECRETS_MANAGER_TIMEOUT = 2.0


def aws_call_seconds(timeout: float) -> float:
    """One AWS call's worst case: every attempt times out connecting and then reading."""
    return AWS_ATTEMPTS * 2 * timeout + (AWS_ATTEMPTS - 1) * AWS_RETRY_BACKOFF_SECONDS


SECRET_READ_SECONDS = aws_call_seconds(SECRETS_MANAGER_TIMEOUT)


# -- Discord ---------------------------------------------------------------------------
def discord_attempt_seconds(connect_timeout: float, read_timeout: float) -> float:
    """The longest one Discord call can take: connect, then read."""
    return connect_timeout + read_timeout


# -- the guard's table calls around each Discord call ----------------------------------
# Before the call, at worst: the blocks, the rate (again after a wait), the budget, the
# bucket (a take, then a probe). After it: the headers, the invalid count and a block.
ADMIT_CALLS = 6
OBSERVE_CALLS = 3

# -- a revocation ----------------------------------------------------------------------
# A revocation's plan assumes its code is cached in at most this many variants (with
# counts or not, with no scheduled event or one): each adds two DynamoDB deletes.
# Callers choose variants (any event id), so this is an assumption, not a limit.
RESERVE_VARIANTS = 4


def eviction_calls(variants: int) -> int:
    """DynamoDB calls one eviction makes for a code cached in ``variants`` variants, at worst:
    the revoked mark, one page of the query, a delete for each variant and its lease, and
    in guild mode the mirrored copy's delete and its digest's."""
    return 4 + 2 * variants


# Kept back from a DELETE's Discord call for what must follow it: the guard's record of
# Discord's answer and the eviction, at a slow table's pace.
REVOCATION_FOLLOWUP_SECONDS = (OBSERVE_CALLS + eviction_calls(RESERVE_VARIANTS)) * SLOW_CALL_SECONDS

# -- a rule run ------------------------------------------------------------------------
# Kept at the end of a run for the summary and metrics, with slack (a webhook's post
# comes on top, within its own timeout).
REPORTING_SECONDS = 1.0


def report_seconds(webhook_timeout: float | None) -> float:
    """The time a rule run keeps for its report: the summary, and the webhook's post if any.
    A webhook URL whose cached copy has run out is read in the same time."""
    return REPORTING_SECONDS + (webhook_timeout or 0.0)


def rule_step_seconds(attempt_seconds: float) -> float:
    """What one step of a rule run (one Discord call and what must follow it) costs when
    the table and Secrets Manager answer slowly and Discord takes its whole timeout: the
    guard's calls before it, the bot token re-read when its cache has run out, the call,
    and the revocation's follow-up. A run starts a step only with this much time left."""
    return attempt_seconds + (ADMIT_CALLS + 1) * SLOW_CALL_SECONDS + REVOCATION_FOLLOWUP_SECONDS
