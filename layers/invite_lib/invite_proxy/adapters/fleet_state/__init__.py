"""The fleet's shared state: blocks, counters and each bucket's line, in two stores with
one contract (``contract``): the DynamoDB table every instance shares (``dynamodb``) and
one instance's own memory (``memory``), which the guard falls back on while the table is down."""
