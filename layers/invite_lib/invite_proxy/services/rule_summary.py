"""A rule run's summary: what it counted, as its log line, its metrics and a message say it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The error code a run that had no time for a single step fails with.
OUT_OF_TIME = "out_of_time"


@dataclass
class RunSummary:
    rule: str
    dry_run: bool
    matched: int = 0
    revoked: int = 0
    already_gone: int = 0
    failed: int = 0
    left: int = 0
    excluded: int = 0
    vanity_skipped: int = 0
    not_listed: int = 0  # named codes the guild's listing does not have: left alone
    cache_ttls_shortened: int = 0
    would_revoke: list[str] = field(default_factory=list)
    # Gone on Discord, but their cached copies could not be evicted: the run fails, so the
    # scheduler's retry (or the dead-letter queue) sees them, and a retry evicts them.
    not_evicted: list[str] = field(default_factory=list)
    stopped: str | None = None  # "deadline" or "error"
    error_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        result = asdict(self)
        if not self.dry_run:
            del result["would_revoke"]
        return result

    def message(self) -> str:
        """The summary, as a human reads it in a Discord channel."""
        if self.dry_run:
            count = len(self.would_revoke)
            codes = ", ".join(self.would_revoke[:50]) or "none"
            more = f" and {count - 50} more" if count > 50 else ""
            text = f"Revocation rule `{self.rule}` (dry run): would revoke {count}: {codes}{more}."
            if self.already_gone:
                text += f" Already gone: {self.already_gone}."
        else:
            text = (
                f"Revocation rule `{self.rule}`: matched {self.matched}, revoked {self.revoked}, "
                f"already gone {self.already_gone}, failed {self.failed}, left {self.left}."
            )
        if self.not_evicted:
            text += f" Gone on Discord but still cached: {', '.join(self.not_evicted)}."
        if self.stopped == "deadline" and self.error_code == OUT_OF_TIME:
            text += " No time for a single step; the scheduler will retry."
        elif self.stopped == "deadline":
            text += " Stopped before the Lambda deadline; the next run picks up the rest."
        elif self.stopped == "error":
            text += f" Stopped on an error ({self.error_code}); the scheduler will retry."
        return text
