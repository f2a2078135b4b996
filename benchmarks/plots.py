"""Pictures of the fleet run, for docs/benchmarks.md: where a table says less than a plot."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

PLOTS = Path(__file__).resolve().parents[1] / "docs" / "bench"


def plots_dir() -> Path:
    path = Path(os.environ.get("BENCH_PLOTS", PLOTS))
    path.mkdir(parents=True, exist_ok=True)
    return path


def latency_histogram(by_cache: Mapping[str, Sequence[float]], title: str) -> Path:
    """Client latency (ms) for each X-Cache outcome, on a log scale."""
    import matplotlib

    matplotlib.use("Agg")  # no screen here, nor on CI
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    values = [v for series in by_cache.values() for v in series if v > 0]
    low, high = max(min(values), 0.1), max(values)
    bins = [low * (high / low) ** (i / 40) for i in range(41)]
    for label, series in sorted(by_cache.items()):
        median = sorted(series)[len(series) // 2]
        axes.hist(
            series, bins=bins, alpha=0.6, label=f"{label} ({len(series)}, median {median:.0f} ms)"
        )
    axes.set_xscale("log")
    axes.set_xlabel("client latency, ms (log scale)")
    axes.set_ylabel("requests")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    path = plots_dir() / "fleet-latency.png"
    figure.savefig(path)
    plt.close(figure)
    return path


def upstream_over_time(call_times: Sequence[float], limit: int, window: float) -> Path:
    """Discord calls so far against the most the bucket allowed by then."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    times = sorted(call_times)
    axes.step(times, range(1, len(times) + 1), where="post", label="Discord calls so far")
    end = times[-1] + window
    windows = math.ceil(end / window)
    allowed_t = [i * window for i in range(windows + 1)]
    allowed = [min(len(times), (i + 1) * limit) for i in range(windows + 1)]
    axes.step(
        allowed_t,
        allowed,
        where="post",
        linestyle="--",
        label=f"the bucket's limit ({limit} per {window:g} s)",
    )
    axes.set_xlabel("seconds since the first call")
    axes.set_ylabel("calls")
    axes.set_title("Fleet run: upstream calls against the bucket")
    axes.legend(loc="upper left")
    figure.tight_layout()
    path = plots_dir() / "fleet-upstream.png"
    figure.savefig(path)
    plt.close(figure)
    return path
