"""Plain data passed between the stages (kept for importers of the old name; see
``worker.domain``)."""

from worker.domain import Article, Explanation

__all__ = ["Article", "Explanation"]
