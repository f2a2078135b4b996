"""Benchmarks run with `make bench`; they measure and report, they never gate the test suite."""
