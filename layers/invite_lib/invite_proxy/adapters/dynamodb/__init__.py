"""Adapters for the one DynamoDB table: the invite cache and the fetch leases.

``keys`` owns every key format; ``calls`` is how the adapters call DynamoDB. The fleet's
shared state, in the same table, is its own package (``adapters.fleet_state``).
"""
