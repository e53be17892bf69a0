"""Speech-feature classification: one label per variable-length sequence of frames.

Default dataset Japanese Vowels (speaker identification from LPC cepstra, ships with aeon);
also the Free Spoken Digit Dataset (digits from librosa MFCCs). Accuracy is the primary
metric (maximise); macro-F1 and a test confusion matrix (CSV + PNG in the run folder) too.
"""

from seqbench_tasks.speech.task import SpeechTask

task = SpeechTask()

__all__ = ["SpeechTask", "task"]
