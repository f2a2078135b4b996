"""A local stand-in for IAM: each function may call the cache table only as template.yaml allows.

Deployed, a DynamoDB call the function's policy does not list fails with
AccessDeniedException. Locally nothing would stop it, so a missing action
would only show up in AWS. The gateway runs every handler "as" its function,
and a botocore hook refuses what the function's policy lacks, the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.exceptions import ClientError

_acting = threading.local()
_installed = threading.Lock()
_done = False

# A transaction needs each item's own action, as IAM evaluates it.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def install() -> None:
    """Hook the default boto3 session, once, before any handler creates its clients."""
    global _done
    with _installed:
        if not _done:
            boto3.setup_default_session()
            boto3.DEFAULT_SESSION.events.register("before-parameter-build.dynamodb", _authorize)  # type: ignore[union-attr]
            _done = True


@contextmanager
def acting_as(function: str, table_actions: frozenset[str]) -> Iterator[None]:
    previous = getattr(_acting, "policy", None)
    _acting.policy = (function, table_actions)
    try:
        yield
    finally:
        _acting.policy = previous


def _actions(operation: str, params: dict[str, Any]) -> list[str]:
    if operation in ("TransactWriteItems", "TransactGetItems"):
        items = params.get("TransactItems", [])
        return sorted({_TRANSACT_ACTIONS[kind] for item in items for kind in item})
    return [operation]


def _authorize(model: Any, params: dict[str, Any], **_: Any) -> None:
    policy = getattr(_acting, "policy", None)
    if policy is None:
        return  # not inside a function: a test's or the runner's own client
    function, allowed = policy
    for action in _actions(model.name, params):
        if f"dynamodb:{action}" not in allowed:
            raise ClientError(
                {
                    "Error": {
                        "Code": "AccessDeniedException",
                        "Message": f"{function} is not authorized to perform: dynamodb:{action} "
                        "(local IAM, from template.yaml)",
                    }
                },
                model.name,
            )
