"""The process's Powertools Logger and Metrics, and the few metric helpers we use.

Service name and namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE, set in template.yaml's Globals.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, single_metric

logger = Logger()
metrics = Metrics()
# Metrics' store is a plain dict: a rule run adds to it from several threads.
_adding = threading.Lock()


def count(name: str, value: int = 1) -> None:
    with _adding:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_by(name: str, dimension: str, label: str) -> None:
    """A count split by one dimension (such as error kind), flushed at once as its own EMF blob."""
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=1,
        namespace=metrics.namespace,
        default_dimensions=metrics.default_dimensions,
    ) as metric:
        metric.add_dimension(name=dimension, value=label)


def units(name: str, value: float) -> None:
    """A quantity that is not a count of events (capacity units), summed per invocation."""
    if value:
        with _adding:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def milliseconds(name: str, value: float) -> None:
    with _adding:
        metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=round(value, 2))


def counts_by(values: Mapping[str, int], dimensions: Mapping[str, str]) -> None:
    """Several counts sharing their own dimensions, flushed at once as one EMF blob."""
    blob = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)
    for dimension, label in dimensions.items():
        blob.add_dimension(name=dimension, value=label)
    for name, value in values.items():
        blob.add_metric(name=name, unit=MetricUnit.Count, value=value)
    blob.flush_metrics()
