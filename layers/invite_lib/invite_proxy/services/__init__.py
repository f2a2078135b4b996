"""The use cases: a lookup, a revocation, a rule run. They call the adapters through
small protocols, and know nothing of API Gateway, boto3 or requests."""
