"""Adapters for the one DynamoDB table: the cache, fetch leases and the fleet's shared state.

``keys`` owns every key format; ``calls`` is how the adapters call DynamoDB.
"""
