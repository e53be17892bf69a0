"""Finding, downloading and caching data files.

One policy for every task: canonical files are looked up by their canonical names in the
data directory (`--data-dir`, else `SEQBENCH_DATA_DIR`, else the user cache); when absent
they are downloaded from the canonical URL, checked against a known sha256 and written
atomically, so an interrupted download never leaves a file that looks complete. Slow
preprocessing is cached under a key derived from the content it was built from.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqbench.errors import SeqbenchError
from seqbench.files import replaced_atomically

DATA_DIR_ENV = "SEQBENCH_DATA_DIR"
CACHE_DIR_ENV = "SEQBENCH_CACHE_DIR"
OFFLINE_ENV = "SEQBENCH_OFFLINE"


def user_cache_dir() -> Path:
    """The per-user cache (`$XDG_CACHE_HOME/seqbench`, default `~/.cache/seqbench`)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seqbench"


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`--data-dir`, else `SEQBENCH_DATA_DIR`, else the user cache."""
    chosen = explicit or os.environ.get(DATA_DIR_ENV)
    path = Path(chosen).expanduser() if chosen else user_cache_dir()
    if chosen and path.exists() and not path.is_dir():
        raise SeqbenchError(f"data directory '{path}' is a file; give the folder that holds "
                            "the data files.")
    if chosen and not path.is_dir():
        raise SeqbenchError(f"data directory '{path}' does not exist.")
    return path


def resolve_cache_dir() -> Path:
    """Where preprocessed data goes: `SEQBENCH_CACHE_DIR`, else the user cache.

    Kept apart from the data dir because canonical data often sits on read-only storage.
    """
    chosen = os.environ.get(CACHE_DIR_ENV)
    return Path(chosen).expanduser() if chosen else user_cache_dir() / "preprocessed"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class RemoteFile:
    """A canonical data file: its name, the sub-folder it lives in, its URL and checksum."""

    name: str
    folder: str
    url: str
    sha256: str | None = None


def _candidates(file: RemoteFile, data_dir: Path) -> list[Path]:
    roots = [data_dir, user_cache_dir()]
    seen: list[Path] = []
    for root in roots:
        for path in (root / file.folder / file.name, root / file.name):
            if path not in seen:
                seen.append(path)
    return seen


def _writable_target(file: RemoteFile, data_dir: Path) -> Path:
    for root in (data_dir, user_cache_dir()):
        folder = root / file.folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder / file.name
    raise SeqbenchError(f"no writable place to download '{file.name}' (tried {data_dir}).")


def download(file: RemoteFile, target: Path, timeout: float = 60.0) -> Path:
    """Fetch `file.url` to `target` atomically, verifying sha256 when it is known."""
    digest = hashlib.sha256()
    with replaced_atomically(target, binary=True) as out:
        with urllib.request.urlopen(file.url, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                out.write(chunk)
                digest.update(chunk)
        if file.sha256 is not None:
            actual = digest.hexdigest()
            if actual != file.sha256:
                raise SeqbenchError(
                    f"download of '{file.name}' from {file.url} has sha256 {actual}, "
                    f"expected {file.sha256}; not saved."
                )
    return target


def find(file: RemoteFile, data_dir: Path) -> Path | None:
    """Path of `file` in the data dir (or user cache) if it is there; never downloads."""
    return next((path for path in _candidates(file, data_dir) if path.is_file()), None)


def locate(file: RemoteFile, data_dir: Path) -> Path:
    """Path of `file` in the data dir (or user cache), downloading it if it is absent."""
    found = find(file, data_dir)
    if found is not None:
        return found
    searched = data_dir / file.folder
    how = (
        f"download {file.url} into {searched}, or point --data-dir / {DATA_DIR_ENV} "
        "at a folder that has it"
    )
    if os.environ.get(OFFLINE_ENV):
        raise SeqbenchError(f"'{file.name}' not found in {searched} ({OFFLINE_ENV} is set); {how}.")
    target = _writable_target(file, data_dir)
    try:
        return download(file, target)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SeqbenchError(
            f"'{file.name}' not found in {searched} and the download failed ({reason}); {how}."
        ) from None


def content_key(*parts: Any) -> str:
    """A short stable hash of the things a cached artefact was built from."""
    digest = hashlib.sha256(repr(parts).encode())
    return digest.hexdigest()[:16]


#: Every cache file `cached` read or wrote in this process, in order, so `seqbench data` can
#: say where a task's cache is even when the task's `describe()` does not.
CACHES_USED: list[Path] = []


def cached(path: Path, build: Callable[[], Any]) -> Any:
    """Load the pickle at `path`, or build it and write it atomically for next time.

    A cache that cannot be written (a full disk, a read-only folder) costs only the next
    run's time: the value is returned anyway, with one note, and no partial file is left.
    """
    CACHES_USED.append(Path(path))
    if path.is_file():
        try:
            with open(path, "rb") as handle:
                return pickle.load(handle)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            path.unlink(missing_ok=True)  # stale or truncated cache: rebuild it
    value = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replaced_atomically(path, binary=True) as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as exc:
        from seqbench.console import note

        note(f"could not write the cache '{path}' ({exc.strerror or exc}); the data is used "
             "without it.")
    return value
