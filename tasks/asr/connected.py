"""`fsdd-connected`: connected digit strings spoken by FSDD's speakers, with true transcripts.

Each string is one speaker's FSDD recordings of 1-7 random digits, joined by silences of
50-300 ms (drawn uniformly). No recording crosses splits: test strings use only FSDD's
official test recordings (indices 0-4 of every digit and speaker), validation strings
indices 5-9 and training strings 10-49, so a model is never scored on a recording it
trained on, even inside another string. The draw is seeded (`data_seed`), and the strings'
MFCCs (the speech task's front end, computed over the joined audio) are cached under a key
of the recordings' bytes and the options.

The oracle-segmentation reference is computed here too: an isolated-digit classifier,
trained on the training strings' recordings, labels each test string's true digit
segments; see `oracle_reference`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqbench import DataContext, cached, content_key
from seqbench.userdata import UserSource
from seqbench_tasks.asr.ctc import edit_distance
from seqbench_tasks.asr.utterances import SPLITS, Utterances
from seqbench_tasks.speech.audio import FSDD_NAME, SAMPLE_RATE, fsdd_recordings, mfcc_frames, \
    read_audio
from seqbench_tasks.speech.minirocket import classifier as minirocket_classifier

#: Bump when generation or features change, so stale caches are rebuilt.
VERSION = 1
#: Silence between two digits of a string, in samples (50 and 300 ms at 8 kHz).
GAP = (SAMPLE_RATE * 50 // 1000, SAMPLE_RATE * 300 // 1000)
#: Recording indices each split draws from: FSDD's test set, then training indices held out
#: for validation, then the rest.
POOLS = {"test": range(0, 5), "valid": range(5, 10), "train": range(10, 50)}


@dataclass(frozen=True)
class Spoken:
    """One connected string: whose it is, the FSDD recordings in spoken order, and the
    silence (in samples) between each two."""

    speaker: str
    recordings: tuple[str, ...]
    gaps: tuple[int, ...]

    @property
    def transcript(self) -> str:
        return "".join(FSDD_NAME.search(name).group(1) for name in self.recordings)


@dataclass
class Connected:
    """The generated splits, how each string was made, and the oracle reference's scores."""

    splits: dict[str, Utterances]
    plans: dict[str, list[Spoken]]
    oracle: dict[str, float]


def pool_of(name: str) -> str:
    """The split a recording may be used in, by its FSDD index."""
    index = int(FSDD_NAME.search(name).group(3))
    return next(split for split, indices in POOLS.items() if index in indices)


def plan(names: list[str], split: str, count: int, max_digits: int, seed: int) -> list[Spoken]:
    """`count` strings of `split`: a speaker, 1..`max_digits` digits and silences, drawn
    from `seed` and the split (so each split's draw is its own, whatever the others' sizes),
    each digit said by a recording of that speaker from the split's pool."""
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    pool: dict[tuple[str, str], list[str]] = {}
    for name in sorted(names):
        if pool_of(name) == split:
            digit, speaker, _ = FSDD_NAME.search(name).groups()
            pool.setdefault((speaker, digit), []).append(name)
    speakers = sorted({speaker for speaker, _ in pool})
    strings = []
    for _ in range(count):
        speaker = speakers[rng.integers(len(speakers))]
        digits = rng.integers(0, 10, size=rng.integers(1, max_digits + 1))
        recordings = tuple(pool[speaker, str(d)][rng.integers(len(pool[speaker, str(d)]))]
                           for d in digits)
        gaps = tuple(int(g) for g in rng.integers(GAP[0], GAP[1] + 1, size=len(digits) - 1))
        strings.append(Spoken(speaker, recordings, gaps))
    return strings


def join(spoken: Spoken, audio: Mapping[str, np.ndarray]) -> np.ndarray:
    """The string's samples: its recordings with silence between them."""
    pieces = [audio[spoken.recordings[0]]]
    for gap, name in zip(spoken.gaps, spoken.recordings[1:]):
        pieces += [np.zeros(gap, dtype=np.float32), audio[name]]
    return np.concatenate(pieces)


def build(paths: list[Path], sizes: Mapping[str, int], max_digits: int, seed: int,
          context: DataContext) -> Connected:
    plans = {split: plan([p.name for p in paths], split, sizes[split], max_digits, seed)
             for split in SPLITS}
    used = {name for strings in plans.values() for spoken in strings
            for name in spoken.recordings}
    audio = {path.name: read_audio(path) for path in context.progress(
        "Reading FSDD recordings", [p for p in paths if p.name in used], len(used))}
    splits = {}
    for split, strings in plans.items():
        features = [mfcc_frames(join(spoken, audio)) for spoken in context.progress(
            f"Computing MFCCs of the {split} strings", strings, len(strings))]
        names = [f"{split}-{i:05d}-{spoken.speaker}" for i, spoken in enumerate(strings)]
        splits[split] = Utterances(features, [s.transcript for s in strings], names)
    return Connected(splits, plans, oracle_reference(audio, plans))


def oracle_reference(audio: Mapping[str, np.ndarray],
                     plans: Mapping[str, list[Spoken]]) -> dict[str, float]:
    """Test label error rate and string accuracy when every digit segment is known.

    An isolated-digit classifier labels each test string's true digit segments (each
    segment is exactly one recording, so its MFCCs are the recording's), and segmentation
    errors are impossible by construction: only substitutions count. The classifier is
    MiniRocket (aeon; Dempster et al. 2021) on the 13 MFCCs zero-padded to the longest
    recording, with scikit-learn's RidgeClassifierCV as in the MiniRocket paper, trained on
    the recordings the training strings are made of (all 2,400 of indices 10-49 at the
    default size): on FSDD's official 300 test recordings it is right on 99.0%, level with the speech task's best recurrent classifiers on `fsdd`
    (results/speech-fsdd: 0.989-0.991). A transcriber that must find the digits itself
    tries to approach it.
    """
    train, test = (sorted({name for spoken in plans[split] for name in spoken.recordings})
                   for split in ("train", "test"))
    frames = {name: mfcc_frames(audio[name]) for name in train + test}
    longest = max(len(f) for f in frames.values())

    def padded(names: list[str]) -> np.ndarray:
        return np.stack([np.pad(frames[n].T, ((0, 0), (0, longest - len(frames[n]))))
                         for n in names])

    classifier = minirocket_classifier()
    classifier.fit(padded(train), np.array([n[0] for n in train]))
    said = dict(zip(test, classifier.predict(padded(test))))
    edits = labels = correct = 0
    for spoken in plans["test"]:
        heard = "".join(said[name] for name in spoken.recordings)
        distance = edit_distance(spoken.transcript, heard)
        edits, labels = edits + distance, labels + len(heard)
        correct += distance == 0
    return {"ler": edits / labels, "string_accuracy": correct / len(plans["test"])}


def load_connected(context: DataContext, params: Mapping[str, Any]
                   ) -> tuple[Connected, UserSource]:
    """The generated splits for `params` (sizes, max_digits, data_seed), cached, and their
    record: each string's recordings in spoken order, for split.json."""
    paths = fsdd_recordings(context)
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    sizes = {split: params[f"{split}_strings"] for split in SPLITS}
    key = content_key("fsdd-connected", VERSION, digest.hexdigest(), sizes,
                      params["max_digits"], params["data_seed"])
    cache = context.cache_dir / f"asr-fsdd-connected-{key}.pkl"
    connected = cached(cache, lambda: build(paths, sizes, params["max_digits"],
                                            params["data_seed"], context))
    items = {split: [f"{name}: {' '.join(spoken.recordings)}" for name, spoken in
                     zip(connected.splits[split].names, connected.plans[split])]
             for split in SPLITS}
    how = (f"test strings from FSDD's official test recordings (indices 0-4), validation "
           f"from indices 5-9, training from 10-49; 1-{params['max_digits']} digits of one "
           f"speaker per string, {GAP[0] * 1000 // SAMPLE_RATE}-"
           f"{GAP[1] * 1000 // SAMPLE_RATE} ms of silence between digits, data_seed "
           f"{params['data_seed']}")
    return connected, UserSource(items, how, cache)
