"""Writing a file so that a reader never sees half of it, and a failed write leaves nothing.

Every record, cache and download is written to a `.partial-` file beside its target and
renamed over it when complete: a crash, a Ctrl-C or a full disk leaves the previous version
(or nothing), never a truncated file that looks complete, and the partial file is removed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

PARTIAL_PREFIX = ".partial-"


@contextmanager
def replaced_atomically(path: Path, binary: bool = False) -> Iterator[IO[Any]]:
    """A handle on a new partial file that replaces `path` when the block ends normally.

    `mkstemp` creates its file with mode 0600; the result gets the mode every other file
    gets (0666 less the umask, usually 0644) so it can be shared like the rest. An OSError
    of the write names the target (a failed `write` names no file by itself).
    """
    fd, tmp = tempfile.mkstemp(prefix=PARTIAL_PREFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") \
                as handle:
            yield handle
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:
            exc.filename = str(path)
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
