"""Adapters: the only code that touches boto3, botocore or requests. Discord's HTTP API,
the DynamoDB table, the fleet's shared state, Secrets Manager, and how AWS clients are made."""
