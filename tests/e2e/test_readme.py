"""The README's and docs' examples that run against `make run` work as written.

Each shell block that calls the local API with curl is run, in order, against a
local run, as a reader would paste it into a second terminal. Two things are mapped
so tests can run side by side: the run's port (a free one for 3000) and its folder
(a test's own for .run/). A block passes when bash succeeds and every HTTP answer
curl shows is a 2xx.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import closed_port
from tests.e2e.local_processes import REPO, Process, clean_env

LOCAL = "http://127.0.0.1:3000"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def examples() -> list[tuple[str, str]]:
    """(where, block) for each shell block that calls make run's API."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for block in re.finditer(r"```(?:sh|bash)\n(.*?)```", text, re.S):
            if LOCAL in block.group(1) and "curl" in block.group(1):
                line = text.count("\n", 0, block.start()) + 1
                found.append((f"{doc.relative_to(REPO)}:{line}", block.group(1)))
    return found


def test_the_readme_has_examples_to_run() -> None:
    assert len(examples()) >= 2  # the first lookup and the DELETE


def test_the_examples_against_make_run_work_as_written(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is needed to run the README's examples (.ci/run installs it)")
    port, run_dir = closed_port(), tmp_path / "run"
    process = Process(clean_env(PORT=str(port), LOCAL_RUN_DIR=str(run_dir)))
    try:
        process.wait_for("Ready.")
        process.keep_reading()
        for where, block in examples():
            script = block.replace(LOCAL, f"http://127.0.0.1:{port}")
            script = script.replace(".run/", f"{run_dir}/")
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, f"{where}\n{result.stderr}"
            statuses = re.findall(r"^HTTP/\S+ (\d{3})", result.stdout, re.M)
            assert statuses, f"{where}: no HTTP answer\n{result.stdout}"
            assert all(s.startswith("2") for s in statuses), f"{where}: {statuses}\n{result.stdout}"
    finally:
        process.stop()


def _anchors(doc: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings."""
    headings = re.findall(r"^#+ (.+)$", doc.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_link_in_the_docs_leads_somewhere(doc: Path) -> None:
    """The README is a page and links: each must reach a file, and a heading if it names one."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        missing_heading = anchor and linked.suffix == ".md" and anchor not in _anchors(linked)
        if not linked.exists() or missing_heading:
            broken.append(target)
    assert broken == []
