"""The fleet's shared state, in two stores side by side that keep one contract
(domain/fleet_state.py): the DynamoDB table every instance shares (``dynamodb``), and one
instance's own memory (``memory``), which the guard falls back on while the table is down.
The contract tests (tests/integration/test_fleet_state.py) run against both."""
