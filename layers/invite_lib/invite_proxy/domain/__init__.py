"""Domain rules and values: errors and their policies, the fleet's guard, rate limits,
cache policy, deadlines and what each outside call can cost, what callers send (inputs),
revocation rules, Discord's payloads and models, admin tokens. No I/O: what they need
from outside is handed in."""
