"""Your own music (dataset `midi`): a folder of MIDI files as piano-roll pieces.

Every `.mid`/`.midi` file under the folder (types 0 and 1) becomes one piece on a grid of
`steps_per_beat` steps per quarter note, in the 88-key encoding of the benchmarks, so a
model trained on it is compared exactly as on JSB Chorales. Drum notes are ignored (they
have no pitch); notes outside the piano are dropped and counted. With `transpose=c` each
piece moves to C major / C minor by its key signature, as the Bach set is; pieces without
one stay as written and are counted.

The split is the user's own `train/ valid/ test/` sub-folders when there are any, else a
stable hash of each file's path inside the folder (80/10/10), so a piece keeps its split
when the folder grows. Rolls are cached by the files' contents and the options.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from seqbench import DataContext, SeqbenchError, cached, content_key, sha256_of
from seqbench.userdata import UserSource, hash_split, user_path
from seqbench_tasks.music.pianoroll import MidiPiece, read_midi, shift_to_c

SPLITS = ("train", "valid", "test")
#: What `hash_split`'s defaults send to each split, for the hint when one stays empty.
SHARE = {"train": "80%", "valid": "10%", "test": "10%"}
MIDI_SUFFIXES = (".mid", ".midi")
#: A piece needs two steps to give one next-step prediction.
MIN_STEPS = 2
#: Bump when the reading changes so stale caches are rebuilt.
ENCODING_VERSION = 1
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


@dataclass
class MidiFolder:
    """Rolls and file names per split, and what was lost on the way."""

    rolls: dict[str, list[np.ndarray]]
    names: dict[str, list[str]]
    how: str
    skipped: list[str] = field(default_factory=list)
    outside: int = 0
    untransposed: int = 0

    def notes(self) -> tuple[str, ...]:
        """One line per thing the user should know about how the files were read."""
        lines = []
        if self.outside:
            lines.append(f"{self.outside} notes outside the 88 piano keys (MIDI 21-108) dropped")
        if self.untransposed:
            lines.append(f"{self.untransposed} pieces have no key signature and were not "
                         "transposed")
        if self.skipped:
            lines.append(f"{len(self.skipped)} files skipped: {', '.join(self.skipped[:5])}"
                         f"{' ...' if len(self.skipped) > 5 else ''}")
        return tuple(lines)


def tonic_of(key: str) -> int:
    """Pitch class of a mido key-signature name ("Eb", "F#m", "Bbm") -> 0..11."""
    return (_LETTERS[key[0]] + key[1:].count("#") - key[1:].count("b")) % 12


def midi_files(folder: Path) -> tuple[dict[str, list[Path]], str]:
    """The MIDI files of each split and how they were split."""
    def under(root: Path) -> list[Path]:
        return sorted(p for p in root.rglob("*")
                      if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())

    own = [s for s in SPLITS if (folder / s).is_dir()]
    if own:
        if len(own) < len(SPLITS):
            missing = ", ".join(f"{s}/" for s in SPLITS if s not in own)
            raise SeqbenchError(f"'{folder}' has {', '.join(f'{s}/' for s in own)} but no "
                                f"{missing}; give all three sub-folders or none.")
        files = {s: under(folder / s) for s in SPLITS}
        how = "your train/ valid/ test/ sub-folders"
    else:
        files = {s: [] for s in SPLITS}
        for path in under(folder):
            files[hash_split(path.relative_to(folder).as_posix())].append(path)
        how = "stable hash of each file's path (80/10/10)"
    if not any(files.values()):
        raise SeqbenchError(f"no MIDI files ({', '.join(MIDI_SUFFIXES)}) in '{folder}'.")
    return files, how


def read_piece(path: Path, steps_per_beat: int, transpose: bool) -> tuple[MidiPiece, bool]:
    """One usable piece, and whether it could be transposed; one-line errors otherwise."""
    piece = read_midi(path, steps_per_beat=steps_per_beat)
    moved = transpose and piece.key is not None
    if moved:  # mido only accepts the 30 valid key names, which `tonic_of` all knows
        shift = shift_to_c(tonic_of(piece.key))
        piece = read_midi(path, steps_per_beat=steps_per_beat, shift=shift)
    if not piece.roll.any():
        what = "only drum notes" if piece.drum_notes else "no notes in the 88-key range" \
            if piece.outside else "no notes"
        raise SeqbenchError(f"MIDI file '{path}' has {what}.")
    if len(piece.roll) < MIN_STEPS:
        raise SeqbenchError(f"MIDI file '{path}' is {len(piece.roll)} step long at "
                            f"steps_per_beat={steps_per_beat}; a piece needs {MIN_STEPS}.")
    return piece, moved


def build(folder: Path, files: dict[str, list[Path]], how: str, steps_per_beat: int,
          transpose: bool, skip_bad: bool, context: DataContext) -> MidiFolder:
    result = MidiFolder({s: [] for s in SPLITS}, {s: [] for s in SPLITS}, how)
    every = [(split, path) for split in SPLITS for path in files[split]]
    for split, path in context.progress("Reading MIDI files", every, len(every)):
        try:
            piece, moved = read_piece(path, steps_per_beat, transpose)
        except SeqbenchError as exc:
            if not skip_bad:
                raise SeqbenchError(f"{exc} (--set skip_bad=true skips such files and counts "
                                    "them)") from None
            result.skipped.append(path.relative_to(folder).as_posix())
            continue
        result.rolls[split].append(piece.roll)
        result.names[split].append(path.relative_to(folder).as_posix())
        result.outside += piece.outside
        result.untransposed += transpose and not moved
    for split in SPLITS:
        if not result.rolls[split]:
            hint = f"put pieces in '{folder / split}'" if how.startswith("your") else \
                f"add pieces (about {SHARE[split]} of them go to {split}) or make train/ " \
                "valid/ test/ sub-folders"
            raise SeqbenchError(f"'{folder}' gives no usable {split} pieces ({how}); {hint}.")
    return result


def load_midi_folder(params: Mapping[str, Any],
                     context: DataContext) -> tuple[MidiFolder, UserSource]:
    """The folder's pieces (built once, then read from the cache) and where they came from."""
    folder = user_path(params["path"], "midi", "a folder of MIDI files", folder=True)
    files, how = midi_files(folder)
    options = (params["steps_per_beat"], params["transpose"] == "c", params["skip_bad"])
    key = content_key("midi", ENCODING_VERSION, options,
                      [(s, p.relative_to(folder).as_posix(), sha256_of(p))
                       for s in SPLITS for p in files[s]])
    cache = context.cache_dir / f"midi-{key}.pkl"
    pieces = cached(cache, lambda: build(folder, files, how, *options, context))
    return pieces, UserSource(pieces.names, how, cache, pieces.notes())
