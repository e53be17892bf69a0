"""The one exception type that means "the user asked for something we cannot do".

The CLI turns it into a single red line and exit code 2; anything else is a bug and is
allowed to show a traceback. Keeping the distinction in one class is what lets every layer
(registry, validation, data loading, training) report user mistakes the same way.
"""

from __future__ import annotations

import difflib
import errno
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class SeqbenchError(Exception):
    """A user-facing error: bad name, bad value, missing data, broken plugin, diverged run."""


class PluginContractError(SeqbenchError):
    """A plugin does not implement what the contract requires (a missing method).

    A user error as far as the command line goes (one `error:` line naming the plugin's
    class and what it lacks), but never "data not available": the conformance kit reports
    it as a failure where it would skip a dataset that is not here.
    """


class WriteFailed(SeqbenchError):
    """A write that the disk, the file system or a closed pipe refused; `place` is where."""

    def __init__(self, message: str, place: str | os.PathLike[str]) -> None:
        super().__init__(message)
        self.place = place


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
    errno.EFBIG: "the file is too large for the file system",
    errno.EPIPE: "the reader on the other end has closed it (a pipe or socket)",
}

#: Errors of the place written to. A move or a copy that meets one names its source first and
#: the destination second (Lightning saves a checkpoint to a temporary file and moves it into
#: the run folder), and it is the destination the user must free or make writable.
DESTINATION_ERRNOS = {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}

#: What torch raises when `torch.save` to a path runs out of room: no errno, no file name.
TORCH_WRITE_FAILURES = ("unexpected pos", "PytorchStreamWriter failed")


def from_os_error(exc: OSError, place: str | os.PathLike[str] | None = None
                  ) -> SeqbenchError | None:
    """One line for an OSError the user can fix, naming its path (or `place`, where the
    error carries none: a failed `write` on an open file names no file), or None for a bug."""
    reason = USER_ERRNOS.get(exc.errno)
    if reason is None or (exc.filename is None and place is None):
        return None
    if exc.filename is None:
        return WriteFailed(f"cannot write to {_named(place)}: {reason}.", place)
    path = exc.filename
    if exc.filename2 is not None and exc.errno in DESTINATION_ERRNOS:
        path = exc.filename2
    return WriteFailed(f"cannot use '{path}': {reason}.", path)


#: The `place` of writes to the terminal or whatever stdout was redirected to.
STDOUT = "standard output"


def _named(place: str | os.PathLike[str]) -> str:
    """A path in quotes; a description (\"standard output\") as it is."""
    return place if place == STDOUT else f"'{place}'"


@contextmanager
def writing(place: str | os.PathLike[str]) -> Iterator[None]:
    """Turn a full disk, a read-only file system or a closed pipe met while writing under
    `place` into one line naming the path and the cause.

    Needed because the errors that reach seqbench from such writes often name no file: a
    `write` on an open file, an append to a journal, and torch's own writer (which raises a
    RuntimeError saying only "unexpected pos"; the cause is then read off the file system).
    """
    try:
        yield
    except OSError as exc:
        error = from_os_error(exc, place)
        if error is None:
            raise
        raise error from None
    except RuntimeError as exc:
        if not any(text in str(exc) for text in TORCH_WRITE_FAILURES):
            raise
        raise WriteFailed(f"cannot write to {_named(place)}: {file_system_state(place)}.",
                          place) from None


def file_system_state(place: str | os.PathLike[str]) -> str:
    """Why writing under `place` may have failed, as far as the file system says."""
    try:
        stats = os.statvfs(place)
    except OSError:
        return "the write failed"
    if stats.f_flag & os.ST_RDONLY:
        return USER_ERRNOS[errno.EROFS]
    if stats.f_bavail == 0 or stats.f_favail == 0:
        return USER_ERRNOS[errno.ENOSPC]
    return "the write failed (is the disk full?)"


def one_line(message: str) -> str:
    """`message` with control characters escaped, so that a path holding a line break
    (which a file system allows) is named in the one error line instead of breaking it."""
    return "".join(char if char.isprintable() or char == " " else
                   char.encode("unicode_escape").decode("ascii") for char in message)


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
