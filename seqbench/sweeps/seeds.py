"""Where every seed of a sweep comes from: one `numpy.random.SeedSequence` per sweep.

The sweep's `--seed` is the entropy of a SeedSequence, and each stage draws from its own
spawned child, then one grandchild per repeat, per trial (or re-run, or final) and per fold:
the seed of search trial 7's fold 2 in repeat 0 is the first word of
`SeedSequence(seed, spawn_key=(SEARCH, 0, 7, 2))`, which is what `SeedSequence(seed)`
`.spawn()`-ing down that path gives. Streams with different spawn keys are independent by
construction (NumPy's NEP 19), so no arithmetic keeps the stages apart and no bound on
`--seed` keeps the sums below 2**32. Every run record stores its spawn key
(`SeedTree.origin`), so any run's seed can be derived again from the study.

Two things are shared on purpose. Selection re-run `i` of every candidate uses the same
seeds (and final `i` of every cell and every repeat the same one), so the differences the
one-standard-error rule and the reports' paired tests look at share their training noise.

Studies made before (schema version 1, `seqbench.sweeps.record`) drew seeds by offsets:
the search on `--seed` itself, re-runs on the next `rerun_seeds` integers, finals from
`--seed + 1000`, and the sampler on `seed * 1_000_003 + trials so far`. `Offsets` keeps
those, so a published study resumed, or a cell added beside published siblings, pairs its
finals with theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqbench.errors import SeqbenchError

#: The children of the sweep's SeedSequence, one per stage (the first spawn-key entry).
SAMPLER, SEARCH, RERUN, FINAL = range(4)
SEED_SEQUENCE = "seed-sequence"
OFFSETS = "offsets"


@dataclass(frozen=True)
class SeedTree:
    """The seeds of a sweep whose `--seed` is `entropy` (schema version 2 on)."""

    entropy: int
    scheme = SEED_SEQUENCE

    def draw(self, stage: int, *indices: int) -> int:
        """The 32-bit seed of `stage` (SAMPLER, SEARCH, RERUN, FINAL) at `indices`:
        (repeat, trials so far) for the sampler, (repeat, trial, fold) for the search,
        (repeat, re-run, fold) for selection, (final,) for the finals."""
        sequence = np.random.SeedSequence(self.entropy, spawn_key=(stage, *indices))
        return int(sequence.generate_state(1, dtype=np.uint32)[0])

    def origin(self, stage: int, *indices: int) -> dict[str, Any]:
        """What a run record stores about its seed: enough to derive it again."""
        return {"scheme": self.scheme, "entropy": self.entropy,
                "spawn_key": [stage, *indices]}

    def recorded(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "entropy": self.entropy}

    def finals(self, count: int) -> list[int]:
        """The seeds of `count` final runs (the same for every cell and every repeat)."""
        return [self.draw(FINAL, index) for index in range(count)]


@dataclass(frozen=True)
class Offsets(SeedTree):
    """Seeds as studies of schema version 1 drew them (see the module docstring)."""

    scheme = OFFSETS
    #: Where final-run seeds started above the sweep's seed.
    FINAL_OFFSET = 1000

    def draw(self, stage: int, *indices: int) -> int:
        if stage == SAMPLER:
            return (self.entropy * 1_000_003 + indices[-1]) % 2**32
        if stage == SEARCH:
            return self.entropy
        if stage == RERUN:
            return self.entropy + 1 + indices[1]
        return self.entropy + self.FINAL_OFFSET + indices[0]


def from_record(recorded: Mapping[str, Any]) -> SeedTree:
    """The seeding a study recorded (`SeedTree.recorded`)."""
    schemes = {SEED_SEQUENCE: SeedTree, OFFSETS: Offsets}
    if recorded.get("scheme") not in schemes:
        raise SeqbenchError(f"unknown seeding {recorded.get('scheme')!r} in a study record; "
                            "it was written by a newer seqbench.")
    return schemes[recorded["scheme"]](int(recorded["entropy"]))
