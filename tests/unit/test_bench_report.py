"""The README's performance table is make bench's, from the committed results."""

from __future__ import annotations

import json

import pytest

from benchmarks.report import README, block, with_table
from benchmarks.results import RESULTS


def test_the_readme_says_what_the_committed_results_say() -> None:
    results = json.loads(RESULTS.read_text())
    assert block(results) in README.read_text()  # make bench rewrites it; never by hand


def test_a_readme_without_the_block_is_an_error_not_a_silent_skip() -> None:
    with pytest.raises(ValueError, match="no <!-- bench:start -->"):
        with_table("# no table here\n", {})
