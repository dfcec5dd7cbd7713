"""The one exception type that every user-caused error in dreamdrive raises."""

from __future__ import annotations


class DreamdriveError(Exception):
    """A problem the user can fix: the message says what was wrong and what to do.

    The CLI prints it without a traceback and exits with status 2.
    """


def require(condition: bool, message: str) -> None:
    """Raise `DreamdriveError(message)` unless `condition` holds."""
    if not condition:
        raise DreamdriveError(message)
