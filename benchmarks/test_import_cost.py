"""Cold start: the API handler's import against `import boto3, requests, pydantic`, same run.

Each sample is a fresh interpreter (imports are cached per process), timed from
inside, so interpreter start-up is excluded. Samples alternate between the two
so machine noise hits both alike. Target: ratio of medians <= 1.3.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLES = int(os.environ.get("IMPORT_SAMPLES", "15"))

BASELINE = "import boto3, requests, pydantic"
HANDLER = (
    "import importlib.util, sys; sys.path.insert(0, 'functions/api');"
    "spec = importlib.util.spec_from_file_location('app', 'functions/api/app.py');"
    "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)"
)
TIMER = "import time; t = time.perf_counter(); {code}; print((time.perf_counter() - t) * 1000)"


def _sample(code: str) -> float:
    env = dict(
        os.environ,
        CACHE_TABLE_NAME="bench-table",
        DISCORD_TOKEN_SECRET_ID="arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_SERVICE_NAME="invite-proxy",
        POWERTOOLS_METRICS_NAMESPACE="InviteProxy",
    )
    out = subprocess.run(
        [sys.executable, "-c", TIMER.format(code=code)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def test_handler_import_cost(benchmark: Any) -> None:
    baseline: list[float] = []
    handler: list[float] = []

    def measure() -> None:
        for _ in range(SAMPLES):
            baseline.append(_sample(BASELINE))
            handler.append(_sample(HANDLER))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    base_ms, handler_ms = statistics.median(baseline), statistics.median(handler)
    ratio = handler_ms / base_ms
    report = {
        "baseline_ms": round(base_ms, 1),
        "handler_ms": round(handler_ms, 1),
        "ratio": round(ratio, 3),
        "target": 1.3,
    }
    benchmark.extra_info.update(report)
    print("\nimport cost:", json.dumps(report))
