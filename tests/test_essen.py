"""The Essen folk tunes (music dataset `essen`): eighth-note rolls in C, split, cache."""

from __future__ import annotations

import numpy as np
import pytest

from seqbench import DataContext
from seqbench_tasks.music import datasets, essen


def abc(text: str):
    from music21 import converter

    return converter.parse(text, format="abc")


def sounding(roll: np.ndarray) -> list[list[int]]:
    return [[int(k) + 21 for k in np.flatnonzero(frame)] for frame in roll]


def test_a_tune_is_sampled_every_eighth_and_moved_to_c_by_its_notated_key():
    # G major: up a fourth to C (G4 67 -> C5 72); d2 and G2 last two eighths each
    roll = essen.tune_to_roll(abc("X:1\nT:t\nM:2/4\nL:1/8\nK:G\nGABc|d2G2|]"))
    assert roll.shape == (8, 88) and roll.dtype == np.uint8
    assert sounding(roll) == [[72], [74], [76], [77], [79], [79], [72], [72]]
    # A minor to C minor: up a minor third, so c becomes E flat (75); quarters take 2 frames
    roll = essen.tune_to_roll(abc("X:1\nT:t\nM:3/4\nL:1/4\nK:Am\nABc|e3|]"))
    assert sounding(roll) == [[72], [72], [74], [74], [75], [75]] + [[79]] * 6


def test_the_collection_is_split_by_tune_and_cached(tmp_path, monkeypatch):
    """One file of the collection (29 tunes) built, split by each tune's file and number,
    and read back from the cache without parsing again."""
    (variants,) = [p for p in essen.tune_files() if p.name == "variant0.abc"]
    monkeypatch.setattr(essen, "tune_files", lambda: [variants])
    context = DataContext(tmp_path, tmp_path / "cache")
    splits = datasets.load_splits("essen", context)
    assert sum(len(rolls) for rolls in splits.values()) == 29
    assert all(roll.shape[1] == 88 and roll.sum(1).max() == 1 and len(roll) >= 8
               for rolls in splits.values() for roll in rolls)  # one melody note at a time
    assert len(splits["train"]) > len(splits["valid"]) + len(splits["test"])
    import music21.converter

    monkeypatch.setattr(music21.converter, "parse", lambda *a, **k: pytest.fail("re-parsed"))
    again = datasets.load_splits("essen", context)
    assert all(np.array_equal(a, b) for s in splits for a, b in zip(splits[s], again[s]))


def test_the_variant_files_are_left_out():
    names = [p.name for p in essen.tune_files()]
    assert len(names) == 27 and not any(n.startswith("test") for n in names)


@pytest.mark.slow
def test_the_whole_collection(tmp_path):
    """About five minutes: every tune of music21's Essen collection."""
    splits = datasets.load_splits("essen", DataContext(tmp_path, tmp_path / "cache"))
    assert [len(splits[s]) for s in datasets.SPLITS] == [6753, 857, 852]
    assert max(len(r) for rolls in splits.values() for r in rolls) == 1392


def test_essen_is_a_music_dataset_with_eighth_note_steps():
    from seqbench_tasks.music import task

    assert "essen" in task.datasets and datasets.STEPS_PER_BEAT["essen"] == 2
