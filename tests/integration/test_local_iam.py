"""The local run's stand-in for IAM: a function may touch the table only as its policy says."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from invite_proxy_local import iam
from invite_proxy_local.template import Template

KEY = {"pk": {"S": "iam#1"}, "sk": {"S": "x"}}


@pytest.fixture
def client(moto_endpoint: str) -> Any:
    iam.install()
    return boto3.client("dynamodb", endpoint_url=moto_endpoint)


def denied(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    return str(caught.value)


def test_an_action_the_policy_lacks_is_denied(client: Any, table_name: str) -> None:
    with iam.acting_as("ReadOnly", frozenset({"dynamodb:GetItem"})):
        client.get_item(TableName=table_name, Key=KEY)
        message = denied(lambda: client.put_item(TableName=table_name, Item=KEY))
    assert "ReadOnly is not authorized to perform: dynamodb:PutItem" in message
    client.put_item(TableName=table_name, Item=KEY)  # outside any function: a test's own client


def test_a_transaction_needs_each_items_action(client: Any, table_name: str) -> None:
    items = [
        {"ConditionCheck": {"TableName": table_name, "Key": KEY, "ConditionExpression": "1 = 1"}},
        {"Put": {"TableName": table_name, "Item": KEY}},
    ]
    with iam.acting_as("PutOnly", frozenset({"dynamodb:PutItem"})):
        message = denied(lambda: client.transact_write_items(TransactItems=items))
    assert "dynamodb:ConditionCheckItem" in message


def test_functions_carry_their_template_policies(template: Template) -> None:
    functions = template.functions()
    assert "dynamodb:UpdateItem" in functions["ApiFunction"].table_actions
    assert functions["AdminAuthorizerFunction"].table_actions == frozenset()
