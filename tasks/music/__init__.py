"""Polyphonic music: predict the next piano-roll frame (Boulanger-Lewandowski et al. 2012).

Each time step is 88 binary keys (MIDI 21-108). The model emits one logit per key; the
loss and the reported metric are the Bernoulli negative log-likelihood summed over the 88
keys and averaged over every predicted frame of the split (frame-weighted), the number
Chung et al. (2014) and the TCN paper report. Frame accuracy is TP / (TP + FP + FN)
(Bay et al. 2009) with a key predicted on when its probability exceeds 0.5.
"""

from seqbench_tasks.music.task import MusicTask

task = MusicTask()

__all__ = ["MusicTask", "task"]
