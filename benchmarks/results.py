"""bench/results.json: every figure `make bench` measures, one key each, with the machine."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results.json"


def record(**figures: float) -> None:
    """Add figures to the results file (other benchmarks' keys are kept)."""
    path = Path(os.environ.get("BENCH_RESULTS", RESULTS))
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update({key: round(value, 4) for key, value in figures.items()})
    current["_machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()}"
    )
    current["_date"] = datetime.now(UTC).strftime("%Y-%m-%d")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(current.items())), indent=2) + "\n")


def add(**figures: float) -> None:
    """Add to figures another benchmark of the same run may have recorded already."""
    path = Path(os.environ.get("BENCH_RESULTS", RESULTS))
    current = json.loads(path.read_text()) if path.exists() else {}
    record(**{key: current.get(key, 0.0) + value for key, value in figures.items()})


def start_run() -> None:
    """A `make bench` run starts a fresh file: every key in it comes from that one run."""
    Path(os.environ.get("BENCH_RESULTS", RESULTS)).unlink(missing_ok=True)
