"""Pydantic's validation report, as one line per offending field: the one way we word it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


def problems(
    exc: ValidationError, hints: dict[str, str] | None = None, *, whole: str = ""
) -> list[str]:
    """``field: what is wrong`` for each error; never the input's value (it may be a secret).

    An error about the input as a whole is named ``whole`` (unnamed when empty).
    """
    hints = hints or {}
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or whole
        message = hints.get(field, error["msg"].removeprefix("Value error, "))
        lines.append(f"{field}: {message}" if field else message)
    return lines
