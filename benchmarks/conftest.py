"""Benchmarks run with `make bench`; they measure and report, they never gate the test suite."""

import os

# Powertools reads these when invite_proxy.observability is first imported, which may be
# while benchmark modules are collected, before any fixture runs.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "invite-proxy")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Bench")
