"""MiniRocket (Dempster et al. 2021), the strong non-recurrent classifier beside every cell.

MiniRocket turns each series into 9,996 proportion-of-positive-values features of random
dilated convolutions and fits a ridge classifier on them; on the UCR archive it is about
as accurate as the best deep models at a fraction of their cost, so a recurrent cell that
loses to it is the wrong tool for that data. The transform is aeon's (a maintained,
numba-compiled implementation), the classifier scikit-learn's `RidgeClassifierCV` over
alphas 10^-3..10^3 on standardised features, as in the paper's reference code.

What it sees, the same on every run of a dataset:
* the whole official training split (MiniRocket's ridge chooses its penalty by its own
  leave-one-out, so it needs no validation split; the UCR/UEA protocol trains on all of
  it), and the test split the cells are scored on;
* each feature standardised with that training split's statistics, so channels on very
  different scales (MFCCs, accelerometers) weigh alike;
* variable-length series zero-padded at the end to the longest series of either split
  (the mean, after standardising), and to at least 9 steps, MiniRocket's kernel length:
  aeon's MiniRocket takes equal-length series only. Padding is what the literature does
  with unequal-length UEA sets for MiniRocket; a padded tail changes some features, so on
  variable-length sets this is MiniRocket as commonly run, not at its very best.

A fit takes seconds to a minute (FSDD: 3,000 recordings), so the result is cached by the
content of both splits: every trial and final of a sweep reads it back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from seqbench import cached, content_key
from seqbench_tasks.speech.datasets import Sequences

#: Bump when the baseline's recipe changes so cached results are recomputed.
VERSION = 1
#: MiniRocket's kernels are 9 steps long.
MIN_STEPS = 9
#: The random kernels' dilations and biases are seeded, so the baseline is one number.
SEED = 0


def padded(sequences: list[np.ndarray], mean: np.ndarray, std: np.ndarray,
           steps: int) -> np.ndarray:
    """`[N, features, steps]` (aeon's channels-first layout): standardised, zero-padded."""
    out = np.zeros((len(sequences), len(mean), steps), dtype=np.float32)
    for row, sequence in enumerate(sequences):
        out[row, :, : len(sequence)] = ((sequence - mean) / std).T
    return out


def classifier():
    """The paper's pipeline: MiniRocket features, standardised, into a ridge classifier
    whose penalty leave-one-out chooses (fit on `[N, channels, steps]`)."""
    from aeon.transformations.collection.convolution_based import MiniRocket
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(MiniRocket(random_state=SEED), StandardScaler(),
                         RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))


def predictions(train: Sequences, test: Sequences) -> np.ndarray:
    """MiniRocket + ridge's predicted class index for every test sequence."""
    frames = np.concatenate(train.features)
    mean, std = frames.mean(axis=0), frames.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    steps = max(MIN_STEPS, *(len(s) for s in train.features + test.features))
    model = classifier()
    model.fit(padded(train.features, mean, std, steps), train.labels)
    return model.predict(padded(test.features, mean, std, steps))


def fingerprint(*parts: Sequences) -> str:
    """A hash of the sequences and labels themselves (the cache key)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(np.asarray(part.labels, dtype=np.int64).tobytes())
        for sequence in part.features:
            digest.update(np.asarray(sequence.shape, dtype=np.int64).tobytes())
            digest.update(np.ascontiguousarray(sequence, dtype=np.float32).tobytes())
    return digest.hexdigest()


def minirocket_predictions(train: Sequences, test: Sequences,
                           cache_dir: Path | None) -> np.ndarray:
    """`predictions`, read from `cache_dir` when these splits were classified before."""
    if cache_dir is None:
        return predictions(train, test)
    key = content_key("minirocket", VERSION, SEED, fingerprint(train, test))
    return cached(cache_dir / f"speech-minirocket-{key}.pkl", lambda: predictions(train, test))
