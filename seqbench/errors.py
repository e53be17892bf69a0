"""The one exception type that means "the user asked for something we cannot do".

The CLI turns it into a single red line and exit code 2; anything else is a bug and is
allowed to show a traceback. Keeping the distinction in one class is what lets every layer
(registry, validation, data loading, training) report user mistakes the same way.
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable


class SeqbenchError(Exception):
    """A user-facing error: bad name, bad value, missing data, broken plugin, diverged run."""


class PluginContractError(SeqbenchError):
    """A plugin does not implement what the contract requires (a missing method).

    A user error as far as the command line goes (one `error:` line naming the plugin's
    class and what it lacks), but never "data not available": the conformance kit reports
    it as a failure where it would skip a dataset that is not here.
    """


class Interrupted(Exception):
    """Ctrl-C, carrying what was kept and how to go on; the CLI prints it and exits 130.

    A bare KeyboardInterrupt knows nothing about the command it stopped, so each command
    that has something worth keeping re-raises it as this, with that one sentence.
    """


#: OS errors that the user's environment causes (a path of the wrong kind, permissions, a
#: full disk), as opposed to bugs; each becomes one line naming the path.
USER_ERRNOS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EEXIST: "a file of that name is in the way",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENAMETOOLONG: "the name is too long",
}


def from_os_error(exc: OSError) -> SeqbenchError | None:
    """One line for an OSError the user can fix (naming the path), or None for a bug."""
    reason = USER_ERRNOS.get(exc.errno)
    if reason is None or exc.filename is None:
        return None
    return SeqbenchError(f"cannot use '{exc.filename}': {reason}.")


def unknown_name(kind: str, name: str, available: Iterable[str],
                 owner: str | None = None) -> SeqbenchError:
    """Build the standard "unknown X" error: the available names plus the closest match.

    With `owner` (e.g. "task 'music'") it reads "task 'music' has no dataset 'jsbx'".
    `name` is whatever the user gave, not always text (a spec file's `"device": null`).
    """
    names = sorted(available)
    close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    listed = ", ".join(names) if names else "(none)"
    what = f"{owner} has no {kind} '{name}'" if owner else f"unknown {kind} '{name}'"
    return SeqbenchError(f"{what}.{hint} Available: {listed}.")
