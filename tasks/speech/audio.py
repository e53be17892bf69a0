"""The audio front end the speech and asr tasks share: WAV in, 13 MFCCs per 10 ms out.

One code path for features, so a digit classifier (speech/fsdd) and a transcriber (asr)
see a recording the same way: audio read at 8 kHz (FSDD's rate; other rates are resampled
by librosa), 25 ms windows, a 10 ms hop, 40 mel bands, 13 coefficients. Also where the
Free Spoken Digit Dataset's recordings are found, since both tasks are built on them.
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import numpy as np

from seqbench import DataContext, RemoteFile, SeqbenchError, locate

SAMPLE_RATE = 8000
N_MFCC = 13
#: Samples per frame step at SAMPLE_RATE: 10 ms.
HOP = 80
FRAME_MS = HOP * 1000 // SAMPLE_RATE

FSDD_ARCHIVE = RemoteFile(
    "free-spoken-digit-dataset-1.0.10.tar.gz",
    "fsdd",
    "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz",
)
#: `{digit}_{speaker}_{index}.wav`; the README's official split: indices 0-4 are the test set.
FSDD_NAME = re.compile(r"(\d)_([a-z]+)_(\d+)\.wav$")


def fsdd_recordings(context: DataContext) -> list[Path]:
    """The 3,000 wav files: `fsdd/recordings/` in the data dir, else from the release archive."""
    folder = context.data_dir / "fsdd" / "recordings"
    if not folder.is_dir():
        archive = locate(FSDD_ARCHIVE, context.data_dir)
        folder = context.cache_dir / "fsdd-recordings"
        if not folder.is_dir():
            with tarfile.open(archive) as tar:
                members = [m for m in tar.getmembers() if FSDD_NAME.search(m.name)]
                for member in members:
                    member.name = Path(member.name).name
                tar.extractall(folder, members=members, filter="data")
    paths = sorted(p for p in folder.glob("*.wav") if FSDD_NAME.search(p.name))
    if len(paths) != 3000:
        raise SeqbenchError(f"'{folder}' has {len(paths)} FSDD recordings, expected 3000; "
                            "replace the folder.")
    return paths


def read_audio(path: Path) -> np.ndarray:
    """The samples of one recording at SAMPLE_RATE (mono float32), or a one-line error
    naming a damaged file.

    librosa gets an open file rather than the path: given a path it falls back from
    soundfile to the deprecated audioread, which warns twice and then fails with an
    exception that says nothing (NoBackendError, or EOFError for an empty file).
    """
    import librosa
    import soundfile

    try:
        with open(path, "rb") as handle:
            audio, _ = librosa.load(handle, sr=SAMPLE_RATE)
    except soundfile.LibsndfileError as exc:
        problem = exc.error_string.rstrip(".")
        raise SeqbenchError(f"'{path}' is not a readable audio file ({problem}); replace it "
                            "with the original recording.") from None
    if not len(audio):
        raise SeqbenchError(f"'{path}' has no audio samples; replace it with the original "
                            "recording.")
    return audio


def mfcc_frames(audio: np.ndarray) -> np.ndarray:
    """13 MFCCs per 10 ms frame `[frames, 13]` of samples at SAMPLE_RATE."""
    import librosa

    features = librosa.feature.mfcc(y=audio, sr=SAMPLE_RATE, n_mfcc=N_MFCC, n_fft=200,
                                     hop_length=HOP, n_mels=40)
    return np.ascontiguousarray(features.T.astype(np.float32))


def mfcc(path: Path) -> np.ndarray:
    """13 MFCCs per 10 ms frame of one recording, or a one-line error naming a damaged file."""
    return mfcc_frames(read_audio(path))
