"""Moved: the one ``Outcome`` and the decisions live in ``campaigns.decisions`` (the pure
evaluation core decides them). Kept while other branches still import it from here; remove
once they are merged."""

from campaigns.decisions import Outcome

__all__ = ["Outcome"]
