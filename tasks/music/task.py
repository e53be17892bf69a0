"""The music task plugin: declarations, batching, loss/metrics and MIDI generation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from seqbench import (
    Batch,
    DataContext,
    IndexedData,
    Param,
    SeqbenchError,
    Task,
    plain_totals,
)
from seqbench.params import MAX_SEED
from seqbench.userdata import UserSource, existing_file, refuse_foreign_options
from seqbench_tasks.music.datasets import DATASETS, STEPS_PER_BEAT, load_splits
from seqbench_tasks.music.midi_folder import load_midi_folder
from seqbench_tasks.music.pianoroll import LOWEST_PITCH, NUM_KEYS, midi_to_roll, roll_to_midi

class MusicData(IndexedData):
    """Piano rolls of one dataset, as next-frame prediction pairs in length-bucketed batches."""

    input_size = NUM_KEYS
    #: Sort this many batches' worth of pieces by length before cutting batches: most of the
    #: padding goes away while batch composition still changes from epoch to epoch.
    bucket = 8

    def __init__(
        self, dataset: str, splits: Mapping[str, list[np.ndarray]], steps_per_beat: int = 1,
        source: UserSource | None = None,
    ) -> None:
        """`source` is set for the user's MIDI folder: its file names and reading notes go
        into `seqbench data` and the run's split record."""
        import torch

        self.dataset = dataset
        self.steps_per_beat = steps_per_beat
        self.source = source
        self.rolls = {name: [r for r in rolls if len(r) >= 2] for name, rolls in splits.items()}
        for name in ("train", "valid", "test"):
            if not self.rolls.get(name):
                raise SeqbenchError(f"music dataset '{dataset}' has no usable {name} sequences.")
        self._tensors = {
            name: [torch.from_numpy(np.asarray(r, dtype=np.float32)) for r in rolls]
            for name, rolls in self.rolls.items()
        }

    def split_sizes(self) -> dict[str, int]:
        return {name: len(rolls) for name, rolls in self.rolls.items()}

    def describe(self) -> dict[str, Any]:
        keys = {split: np.sum([r.sum(0, dtype=np.int64) for r in rolls], axis=0) for split, rolls in
                self.rolls.items()}
        return {"lengths": {split: self.lengths(split) for split in self.rolls},
                "balance": {split: {f"MIDI {k + LOWEST_PITCH}": int(c[k])
                                    for k in np.argsort(-c, kind="stable")[:8] if c[k]}
                            for split, c in keys.items()},
                **(self.source.facts() if self.source else {})}

    def artifacts(self, model, run_dir: Path) -> list[Path]:
        """The user's folder: which file went to which split."""
        return self.source.write(run_dir) if self.source else []

    def items(self, split: str) -> int:
        return len(self._tensors[split])

    def lengths(self, split: str) -> list[int]:
        return [len(s) for s in self._tensors[split]]

    def collate(self, split: str, rows: np.ndarray) -> Batch:
        return _collate([self._tensors[split][i] for i in rows])

    def modules(self, hidden_size: int, params: Mapping[str, Any]):
        from torch import nn

        return nn.Identity(), self.head(hidden_size, params)

    def key_frequencies(self) -> np.ndarray:
        """Share of training frames in which each key sounds (add-one smoothed)."""
        frames = np.concatenate(self.rolls["train"])
        return (frames.sum(0) + 1.0) / (len(frames) + 2.0)

    def head(self, hidden_size: int, params: Mapping[str, Any]):
        import torch
        from torch import nn

        head = nn.Linear(hidden_size, NUM_KEYS)
        with torch.no_grad():
            # Start every cell at the per-key marginal model: with zero biases a deep LSTM
            # spends a dozen epochs on the plateau of that model before learning anything.
            head.bias.copy_(torch.from_numpy(_logit(self.key_frequencies())))
        return head

    def item_scores(self, outputs, batch: Batch):
        import torch.nn.functional as F

        per_key = F.binary_cross_entropy_with_logits(outputs, batch.targets, reduction="none")
        mask = batch.mask.to(per_key.dtype)
        return (per_key.sum(-1) * mask).sum(1), mask.sum(1)

    def baselines(self) -> dict[str, dict[str, float]]:
        """Per-key models on the test frames: the marginal key frequency, and a first-order
        Markov chain per key (P(on | on), P(on | off) from training transitions)."""
        import torch

        frequency = torch.from_numpy(_logit(self.key_frequencies())).float()
        previous = np.concatenate([r[:-1] for r in self.rolls["train"]])
        following = np.concatenate([r[1:] for r in self.rolls["train"]])
        on_after = [((following * (previous == state)).sum(0) + 1.0)
                    / ((previous == state).sum(0) + 2.0) for state in (0, 1)]
        after_off, after_on = (torch.from_numpy(_logit(p)).float() for p in on_after)
        predictors = {
            "per_key_marginal": lambda batch: frequency.expand_as(batch.targets),
            "per_key_markov": lambda batch: torch.where(batch.inputs > 0.5, after_on, after_off),
        }
        results = {}
        for name, predict in predictors.items():
            totals: dict[str, Any] = {}
            for batch in self.batches("test", 64):
                for key, value in self.statistics(predict(batch), batch).items():
                    totals[key] = totals.get(key, 0) + value
            results[name] = self.metrics(plain_totals(totals))
        return results

    def loss(self, outputs, batch: Batch):
        nll, frames = _masked_nll(outputs, batch)
        return nll / frames

    def statistics(self, outputs, batch: Batch):
        nll, frames = _masked_nll(outputs, batch)
        mask = batch.mask.unsqueeze(-1)
        predicted = (outputs > 0) & mask
        actual = (batch.targets > 0.5) & mask
        return {
            "nll": nll,
            "frames": frames,
            "tp": (predicted & actual).sum(),
            "fp": (predicted & ~actual).sum(),
            "fn": (~predicted & actual).sum(),
        }

    def metrics(self, totals: Mapping[str, float]) -> dict[str, float]:
        hits = totals["tp"] + totals["fp"] + totals["fn"]
        return {
            "nll": totals["nll"] / totals["frames"],
            "frame_accuracy": totals["tp"] / hits if hits else 0.0,
        }


def _logit(probability: np.ndarray) -> np.ndarray:
    return np.log(probability / (1.0 - probability)).astype(np.float32)


def _collate(sequences: list) -> Batch:
    """Pad to the longest sequence; inputs are frames 0..T-2, targets frames 1..T-1."""
    import torch

    longest = max(len(s) for s in sequences)
    padded = torch.zeros(len(sequences), longest, NUM_KEYS)
    mask = torch.zeros(len(sequences), longest - 1, dtype=torch.bool)
    for row, seq in enumerate(sequences):
        padded[row, : len(seq)] = seq
        mask[row, : len(seq) - 1] = True
    return Batch(inputs=padded[:, :-1], targets=padded[:, 1:], mask=mask)


def _masked_nll(outputs, batch: Batch):
    """Bernoulli NLL summed over keys and real frames, and the number of real frames."""
    import torch.nn.functional as F

    per_key = F.binary_cross_entropy_with_logits(outputs, batch.targets, reduction="none")
    mask = batch.mask
    return (per_key.sum(-1) * mask).sum(), mask.sum()


class MusicTask(Task):
    name = "music"
    summary = "Polyphonic music: next piano-roll frame, NLL per time step (Boulanger-Lewandowski 2012)"
    datasets = DATASETS
    default_dataset = "bach"
    primary_metric = "nll"
    direction = "minimize"
    #: With the output bias at the key log-odds a model leaves the marginal plateau within 3
    #: epochs (from zero biases a deep LSTM needed about 25): 10 leaves a wide margin.
    defaults = {"epochs": 200, "hidden_size": 128, "batch_size": 16, "lr": 3e-3, "patience": 10,
                "min_epochs": 10}
    search = {"hidden_size": (32, 512), "layers": (1, 2), "batch_size": (4, 32)}
    generate_params = (
        Param("steps", int, 64, "frames to sample after the primer", low=1, high=100_000),
        Param("temperature", float, 1.0, "divides the logits before sampling", low=1e-3,
              high=100.0),
        Param("seed", int, 0, "sampling seed", low=0, high=MAX_SEED),
        Param("num", int, 1, "number of MIDI files to write", low=1, high=1000),
        Param("primer_steps", int, 8, "primer length taken from a test piece", low=1,
              high=100_000),
        Param("primer_piece", int, 0, "index of the test piece used as primer", low=0),
        Param("primer_midi", str, "", "a MIDI file to use as primer instead of a test piece"),
        Param("tempo", float, 100.0, "tempo of the written MIDI in beats per minute", low=1.0,
              high=1000.0),
    )

    params = (
        Param("path", str, "", "folder of your MIDI files (dataset 'midi'; train/ valid/ "
              "test/ sub-folders are used as the split when present)", tune=False),
        Param("steps_per_beat", int, 4, "piano-roll steps per quarter note (dataset 'midi')",
              low=1, high=96, tune=False),
        Param("transpose", str, "none", "'c' moves each piece to C major / C minor by its key "
              "signature (dataset 'midi')", choices=("none", "c"), tune=False),
        Param("skip_bad", bool, False, "skip unreadable, empty or too short MIDI files and "
              "count them, instead of stopping (dataset 'midi')", tune=False),
    )

    def prepare(self, dataset: str, context: DataContext, params: Mapping[str, Any]) -> MusicData:
        refuse_foreign_options(dataset, params, self.params,
                               {p.name: ("midi",) for p in self.params})
        if dataset == "midi":
            pieces, source = load_midi_folder(params, context)
            return MusicData(dataset, pieces.rolls, params["steps_per_beat"], source)
        return MusicData(dataset, load_splits(dataset, context), STEPS_PER_BEAT[dataset])

    def check_case(self):
        """Hand-checkable piano rolls for the conformance kit (see `check.py`)."""
        from seqbench_tasks.music.check import music_check_case

        return music_check_case()

    def generate(self, model, data: MusicData, out_dir: Path, options: Mapping[str, Any]):
        import torch

        primer = self._primer(data, options)
        generator = torch.Generator().manual_seed(options["seed"])
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        device = next(model.parameters()).device
        for index in range(options["num"]):
            roll = sample(model, primer, options["steps"], options["temperature"], generator, device)
            path = out_dir / f"sample-{index + 1}.mid"
            roll_to_midi(roll, path, tempo_bpm=options["tempo"], steps_per_beat=data.steps_per_beat)
            written.append(path)
        return written

    @staticmethod
    def _primer(data: MusicData, options: Mapping[str, Any]) -> np.ndarray:
        if options["primer_midi"]:
            path = existing_file(options["primer_midi"], "primer MIDI file")
            roll = midi_to_roll(path, steps_per_beat=data.steps_per_beat)
            if len(roll) == 0:
                raise SeqbenchError(f"primer MIDI file '{path}' has no notes in range.")
        else:
            pieces = data.rolls["test"]
            if options["primer_piece"] >= len(pieces):
                raise SeqbenchError(
                    f"primer_piece={options['primer_piece']} but the test split has "
                    f"{len(pieces)} pieces."
                )
            roll = pieces[options["primer_piece"]]
        return np.asarray(roll[: options["primer_steps"]], dtype=np.float32)


def sample(model, primer: np.ndarray, steps: int, temperature: float, generator, device):
    """Run the primer through the model, then sample `steps` frames one at a time."""
    import torch

    frames = [torch.from_numpy(primer)]
    with torch.no_grad():
        logits, state = model(frames[0].unsqueeze(0).to(device))
        for _ in range(steps):
            probs = torch.sigmoid(logits[0, -1].float().cpu() / temperature)
            frame = torch.bernoulli(probs, generator=generator)
            frames.append(frame.unsqueeze(0))
            logits, state = model(frame.view(1, 1, -1).to(device), state)
    return torch.cat(frames).numpy().astype(np.uint8)
