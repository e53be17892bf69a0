"""Piano rolls: the 88-key binary encoding of Boulanger-Lewandowski et al. (2012), and MIDI.

A roll is a `uint8[T, 88]` array; column `k` is MIDI pitch `k + 21` (A0..C8), row `t` one
time step. The canonical datasets store each step as a list of sounding pitches; MIDI files
are what people play. A key held over consecutive steps becomes one long note (the encoding
cannot tell a held note from a repeated one, and a held note is what it usually was).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqbench import SeqbenchError

LOWEST_PITCH = 21
NUM_KEYS = 88
HIGHEST_PITCH = LOWEST_PITCH + NUM_KEYS - 1

#: MIDI ticks per beat in the files we write (a common, finely divisible resolution).
TICKS_PER_BEAT = 480
#: The longest MIDI piece read, in beats: 6 hours at 100 beats per minute (the tempo written
#: MIDI gets), longer than any opera act. Without a cap a file whose delta times are garbage
#: (one delta may be 2**28 ticks) asks for terabytes of roll; with it the roll of the longest
#: piece is 13 MB at the default 4 steps per beat and 300 MB at the finest grid (96).
MAX_BEATS = 36_000


def shift_to_c(tonic: int) -> int:
    """Semitones that move a tonic pitch class (0 = C) to C, the smaller way (-6..+5)."""
    return (-tonic + 6) % 12 - 6


def steps_to_roll(steps: Sequence[Iterable[int]]) -> np.ndarray:
    """Lists of sounding MIDI pitches per step -> `uint8[T, 88]` roll."""
    roll = np.zeros((len(steps), NUM_KEYS), dtype=np.uint8)
    for t, pitches in enumerate(steps):
        for pitch in pitches:
            roll[t, _piano_key(pitch, t)] = 1
    return roll


def _piano_key(pitch: object, step: int) -> int:
    """The roll column of a MIDI pitch, or ValueError. A re-saved pickle may hold floats, so
    a whole-number float is a pitch; `int()` alone would round 60.7 down and throw
    OverflowError for infinity."""
    if isinstance(pitch, float | np.floating) and float(pitch).is_integer():
        pitch = int(pitch)
    if not isinstance(pitch, int | np.integer):
        raise ValueError(f"pitch {pitch!r} at step {step} is not a whole MIDI note number")
    if not LOWEST_PITCH <= pitch <= HIGHEST_PITCH:
        raise ValueError(f"pitch {pitch} at step {step} is outside the piano range "
                         f"{LOWEST_PITCH}..{HIGHEST_PITCH}")
    return int(pitch) - LOWEST_PITCH


def roll_to_midi(
    roll: np.ndarray,
    path: str | Path,
    *,
    tempo_bpm: float = 100.0,
    steps_per_beat: int = 1,
    program: int = 0,
    velocity: int = 80,
) -> Path:
    """Write `roll` as a one-track MIDI file; held keys become single notes."""
    import mido

    roll = np.asarray(roll) > 0
    ticks_per_step = TICKS_PER_BEAT // steps_per_beat
    events: list[tuple[int, int, str, int]] = []  # (tick, order, kind, pitch): offs sort first
    for key in range(NUM_KEYS):
        column = np.concatenate([[False], roll[:, key], [False]]).astype(np.int8)
        changes = np.diff(column)
        starts, ends = np.flatnonzero(changes == 1), np.flatnonzero(changes == -1)
        pitch = key + LOWEST_PITCH
        for start, end in zip(starts, ends):
            events.append((int(start) * ticks_per_step, 1, "note_on", pitch))
            events.append((int(end) * ticks_per_step, 0, "note_off", pitch))
    events.sort()

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm), time=0))
    track.append(mido.Message("program_change", program=program, time=0))
    now = 0
    for tick, _, kind, pitch in events:
        track.append(mido.Message(kind, note=pitch, velocity=velocity if kind == "note_on" else 0,
                                  time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=ticks_per_step if not events else 0))
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    path = Path(path)
    midi.save(path)
    return path


@dataclass
class MidiPiece:
    """A MIDI file read onto the piano-roll grid, with what the 88-key encoding lost."""

    roll: np.ndarray
    #: Notes outside MIDI 21..108, dropped from the roll.
    outside: int
    #: Notes on the General MIDI drum channel (10), ignored: they have no pitch.
    drum_notes: int
    #: The first key signature in the file (mido's spelling, e.g. "Eb" or "F#m"), if any.
    key: str | None


def _open_midi(path: str | Path):
    """A `mido.MidiFile` timed in beats, or one clear error: a damaged file, a type 2 file
    (its tracks are not one piece) or a header whose time division gives no beat grid."""
    import mido

    try:
        midi = mido.MidiFile(path)
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        # mido's EOFError for a file cut short carries no text; say what it means.
        reason = str(exc) or ("the file ends in the middle of a track" if isinstance(exc, EOFError)
                              else type(exc).__name__)
        raise SeqbenchError(f"cannot read MIDI file '{path}': {reason}.") from None
    if midi.type == 2:
        raise SeqbenchError(f"MIDI file '{path}' is type 2 (independent patterns); save it as "
                            "type 0 or 1.")
    if midi.ticks_per_beat < 0:  # mido reads the header's division as a signed short
        raise SeqbenchError(f"MIDI file '{path}' is timed in SMPTE frames, not beats; SMPTE "
                            "time division is not supported: save it with ticks per beat.")
    if midi.ticks_per_beat == 0:
        raise SeqbenchError(f"MIDI file '{path}' has 0 ticks per beat in its header; the file "
                            "is damaged.")
    return midi


def _grid_length(path: str | Path, end_tick: int, ticks_per_beat: int,
                 ticks_per_step: float) -> int:
    """Steps up to the last note's end, refused beyond `MAX_BEATS` before any allocation."""
    beats = end_tick / ticks_per_beat
    if beats > MAX_BEATS:
        raise SeqbenchError(f"MIDI file '{path}' is {beats:,.0f} beats long; the limit is "
                            f"{MAX_BEATS:,} beats (6 hours at 100 bpm): are its delta times "
                            "damaged?")
    return math.ceil(end_tick / ticks_per_step)


def read_midi(path: str | Path, *, steps_per_beat: int = 1, shift: int = 0) -> MidiPiece:
    """Read a type 0 or 1 MIDI file (all tracks, all channels but drums) onto a beat grid,
    moved by `shift` semitones.

    A step is on for a key when a note of that pitch sounds during any part of the step;
    notes outside the piano range are dropped and counted.
    """
    midi = _open_midi(path)
    ticks_per_step = midi.ticks_per_beat / steps_per_beat
    notes: list[tuple[int, float, float]] = []  # (pitch, start tick, end tick)
    drum_notes, key = 0, None
    for track in midi.tracks:
        now, sounding = 0, {}
        for message in track:
            now += message.time
            if message.type == "key_signature" and key is None:
                key = message.key
            if message.type not in ("note_on", "note_off"):
                continue
            if message.channel == 9:
                drum_notes += message.type == "note_on" and message.velocity > 0
                continue
            note = (message.channel, message.note)
            if message.type == "note_on" and message.velocity > 0:
                sounding.setdefault(note, now)
            elif note in sounding:
                notes.append((message.note + shift, sounding.pop(note), now))
    inside = [n for n in notes if LOWEST_PITCH <= n[0] <= HIGHEST_PITCH]
    length = _grid_length(path, max((end for _, _, end in notes), default=0),
                          midi.ticks_per_beat, ticks_per_step)
    roll = np.zeros((length, NUM_KEYS), dtype=np.uint8)
    for pitch, start, end in inside:
        first = int(start // ticks_per_step)
        last = max(first + 1, int(np.ceil(end / ticks_per_step)))
        roll[first:last, pitch - LOWEST_PITCH] = 1
    return MidiPiece(roll, len(notes) - len(inside), drum_notes, key)


def midi_to_roll(path: str | Path, *, steps_per_beat: int = 1) -> np.ndarray:
    """The roll of a MIDI file as it is written (see `read_midi`)."""
    return read_midi(path, steps_per_beat=steps_per_beat).roll
