"""The one exception type that means "the user asked for something we cannot do".

The CLI turns it into a single red line and exit code 2; anything else is a bug and is
allowed to show a traceback. Keeping the distinction in one class is what lets every layer
(registry, validation, data loading, training) report user mistakes the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SeqbenchError(Exception):
    """A user-facing error: bad name, bad value, missing data, broken plugin, diverged run."""


def unknown_name(kind: str, name: str, available: Iterable[str]) -> SeqbenchError:
    """Build the standard "unknown X" error: the available names plus the closest match."""
    names = sorted(available)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    listed = ", ".join(names) if names else "(none installed)"
    return SeqbenchError(f"unknown {kind} '{name}'.{hint} Available: {listed}.")
