"""User-facing errors: one clear line that names the problem and how to fix it.

The CLI catches :class:`LlmperfError`, prints ``error: <message>`` and exits with code 2; no
traceback ever reaches a user for bad input.
"""

from __future__ import annotations

import difflib


class LlmperfError(ValueError):
    """Bad user input (spec, name, workload). The message is one line, ready to print."""

    def __init__(self, message: str):
        # user-supplied values quoted in the message must not break it over several lines
        super().__init__(" ".join(str(message).split()))


class SpecError(LlmperfError):
    """A hardware/model/workload spec is malformed; the message names the file and the field."""


class UnknownNameError(LlmperfError):
    """An unknown bundled model/hardware name; the message suggests close names."""


def suggest(name: str, candidates, n: int = 3) -> str:
    """Return ``" (did you mean: a, b?)"`` for the closest candidates, or ``""``."""
    close = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)
    return f" (did you mean: {', '.join(close)}?)" if close else ""
