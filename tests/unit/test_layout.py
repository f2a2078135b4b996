"""The library's folders say what may import what, and docs/architecture.md lists every module.

Read from the source with ``ast``: nothing is imported, so the check costs nothing and
sees imports made inside functions too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "layers" / "invite_lib"
PACKAGE = LIBRARY / "invite_proxy"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# What each folder may import from the library, beside itself (docs/architecture.md).
MAY_IMPORT = {
    "domain": ("invite_proxy.domain", "invite_proxy.observability"),
    "services": (
        "invite_proxy.services",
        "invite_proxy.domain",
        "invite_proxy.observability",
    ),
    "adapters": (
        "invite_proxy.adapters",
        "invite_proxy.domain",
        "invite_proxy.observability",
    ),
    "observability.py": (),  # the one module every layer may import: it imports none
}
# Only adapters talk to AWS or over HTTP.
OUTSIDE = ("boto3", "botocore", "requests", "urllib3", "mypy_boto3_dynamodb", "s3transfer")


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def folder(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


def imports(path: Path, *, with_type_only: bool) -> list[str]:
    """Every module ``path`` imports; ``with_type_only`` adds those under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(), str(path))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",):
            type_only.update(id(n) for n in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if not with_type_only and id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from invite_proxy import observability`` imports the module itself.
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def within(name: str, allowed: tuple[str, ...]) -> bool:
    return any(name == a or name.startswith(a + ".") for a in allowed)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_what_its_folder_may(path: Path) -> None:
    role = folder(path)
    if role not in MAY_IMPORT:
        return  # edges: where the pieces meet
    # Types count: a type from a folder a module may not use is a tie all the same.
    ours = [n for n in imports(path, with_type_only=True) if n.startswith("invite_proxy.")]
    wrong = [n for n in ours if not within(n, MAY_IMPORT[role])]
    assert not wrong, f"{role}/ may not import {wrong}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_adapters_touch_aws_or_http(path: Path) -> None:
    if folder(path) == "adapters":
        return
    outside = [n for n in imports(path, with_type_only=False) if within(n, OUTSIDE)]
    assert not outside, f"{path.relative_to(PACKAGE)} imports {outside}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_nothing_below_the_edges_imports_them(path: Path) -> None:
    if folder(path) == "edges":
        return
    names = imports(path, with_type_only=True)
    assert not [n for n in names if within(n, ("invite_proxy.edges",))]


def test_the_architecture_page_lists_every_module_and_no_other() -> None:
    listed = set(re.findall(r"`(invite_proxy/[\w/]+\.py)`", ARCHITECTURE.read_text()))
    present = {str(p.relative_to(LIBRARY)) for p in modules()}
    assert listed - present == set(), "listed, but not in the tree"
    assert present - listed == set(), "in the tree, but not in docs/architecture.md"


def test_the_checks_see_imports_inside_functions_and_skip_type_only_ones(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from invite_proxy.adapters.discord.client import X\n"
        "def f():\n    from invite_proxy.edges import wiring\n"
    )
    assert imports(sample, with_type_only=False) == [
        "typing.TYPE_CHECKING",
        "invite_proxy.edges.wiring",
    ]
    assert "invite_proxy.adapters.discord.client.X" in imports(sample, with_type_only=True)
