"""Speech recognition with CTC: transcribe a recording into a string of labels.

The model reads MFCC steps (the speech task's front end, standardised with training
statistics, `stack` consecutive 10 ms frames per step) with the run's cell, optionally in
both directions, and a readout gives per-step probabilities over the alphabet and the CTC
blank. Training minimises the CTC loss (Graves et al. 2006: no frame alignment needed);
decoding is best-path or prefix beam search. Metrics: label error rate (edit distance over
reference length, summed over the split), string accuracy and the CTC loss per label, on
which runs are selected and stopped early (LER moves in steps on 600 strings).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from seqbench import Batch, DataContext, IndexedData, Param, SeqbenchError, Task
from seqbench.userdata import UserSource, existing_file, refuse_foreign_options
from seqbench_tasks.asr.ctc import decode, edit_distance
from seqbench_tasks.asr.utterances import SPLITS, Utterances
from seqbench_tasks.speech.audio import FRAME_MS, mfcc
from seqbench_tasks.speech.task import Standardizer, collate

#: What a run folder keeps so that `generate` transcribes without the dataset.
RECORD = "asr.json"


def stack_frames(frames: np.ndarray, stack: int) -> np.ndarray:
    """`[T, F]` -> `[ceil(T / stack), F * stack]`: each step holds `stack` consecutive
    frames (zero-padded at the end), a frame rate `stack` times lower for the cell to
    read, as in Sak et al. (2015)'s CTC acoustic models."""
    steps = -(-len(frames) // stack)
    padded = np.zeros((steps * stack, frames.shape[1]), dtype=np.float32)
    padded[: len(frames)] = frames
    return padded.reshape(steps, stack * frames.shape[1])


def ctc_steps_needed(labels: list[int]) -> int:
    """The fewest steps CTC can emit `labels` in: one per label, plus a blank between each
    two equal neighbours ("00" needs 0, blank, 0)."""
    return len(labels) + sum(a == b for a, b in zip(labels, labels[1:]))


class AsrData(IndexedData):
    """Utterances as stacked, standardised MFCC steps with label-id targets."""

    bucket = 8

    def __init__(self, dataset: str, splits: Mapping[str, Utterances], alphabet: str,
                 params: Mapping[str, Any], standardize: Standardizer | None = None,
                 source: UserSource | None = None,
                 references: Mapping[str, Mapping[str, float]] | None = None) -> None:
        """`standardize` is given when restoring a run (no splits then); otherwise it is
        fitted on the training frames. `references` are baseline metrics computed with
        the data (fsdd-connected's oracle segmentation)."""
        import torch

        self.dataset, self.alphabet, self.source = dataset, alphabet, source
        self.stack, self.decoder = params["stack"], params["decoder"]
        self.beam_width = params["beam_width"]
        self.standardize = standardize or Standardizer.fit(splits["train"].features)
        self.input_size = int(len(self.standardize.mean) * self.stack)
        self.references = dict(references or {})
        self.names = {split: list(u.names) for split, u in splits.items()}
        self.transcripts = {split: list(u.transcripts) for split, u in splits.items()}
        self.inputs = {split: [torch.from_numpy(self.steps(f)) for f in u.features]
                       for split, u in splits.items()}
        self.targets = {split: [torch.tensor(self.encode(t)) for t in u.transcripts]
                        for split, u in splits.items()}
        for split in self.inputs:
            for name, steps, labels in zip(self.names[split], self.inputs[split],
                                           self.targets[split]):
                if len(steps) < ctc_steps_needed(labels.tolist()):
                    raise SeqbenchError(
                        f"'{name}' ({split}) is too short for its transcript: {len(steps)} "
                        f"steps of {FRAME_MS * self.stack} ms cannot emit its "
                        f"{len(labels)} labels; check the transcript, or use --set stack=1.")

    def steps(self, frames: np.ndarray) -> np.ndarray:
        """The model's input steps for one utterance's MFCC frames."""
        return stack_frames(self.standardize(frames), self.stack)

    def encode(self, text: str) -> list[int]:
        """Label ids 1..K of a transcript (0 is the CTC blank)."""
        return [self.alphabet.index(symbol) + 1 for symbol in text]

    def text(self, labels: list[int]) -> str:
        return "".join(self.alphabet[label - 1] for label in labels)

    # ---- data ----
    def items(self, split: str) -> int:
        return len(self.inputs.get(split, ()))

    def lengths(self, split: str) -> list[int]:
        return [len(steps) for steps in self.inputs[split]]

    def collate(self, split: str, rows: np.ndarray) -> Batch:
        import torch

        targets = [self.targets[split][i] for i in rows]
        batch = collate([self.inputs[split][i] for i in rows],
                        torch.nn.utils.rnn.pad_sequence(targets, batch_first=True))
        batch.extra["target_lengths"] = torch.tensor([len(t) for t in targets])
        return batch

    def split_sizes(self) -> dict[str, int]:
        return {split: self.items(split) for split in SPLITS}

    def describe(self) -> dict[str, Any]:
        notes = [f"steps of {FRAME_MS * self.stack} ms ({self.stack} MFCC frames of "
                 f"{FRAME_MS} ms each); "
                 f"alphabet {self.alphabet!r}"]
        for split, texts in self.transcripts.items():
            counts = sorted(Counter(len(t) for t in texts).items())
            shown = (", ".join(f"{length}: {count}" for length, count in counts)
                     if len(counts) <= 10 else
                     "min / median / mean / max " + " / ".join(
                         f"{v:g}" for v in _summary([len(t) for t in texts])))
            notes.append(f"{split} transcript lengths in labels: {shown}")
        facts = self.source.facts() if self.source else {}
        return {"lengths": {split: self.lengths(split) for split in self.inputs},
                "balance": {split: dict(sorted(Counter("".join(texts)).items()))
                            for split, texts in self.transcripts.items()},
                **facts, "notes": notes + facts.get("notes", [])}

    # ---- model, loss, metrics ----
    def network(self, cells, hidden_size: int, params: Mapping[str, Any]):
        from seqbench_tasks.asr.network import Transcriber

        return Transcriber(cells, self.input_size, hidden_size, len(self.alphabet),
                           params["bidirectional"])

    def ctc(self, outputs, batch: Batch):
        """The summed CTC negative log-likelihood of the batch's transcripts.

        On a GPU the loss is taken on the CPU: torch's CUDA CTC backward is
        non-deterministic, so deterministic mode refuses it, and the per-step outputs are
        small enough to move. The result goes back to the outputs' device, where mixed
        precision's gradient scaler keeps its scale.
        """
        import torch.nn.functional as F

        return F.ctc_loss(outputs.transpose(0, 1).cpu(), batch.targets.cpu(),
                          batch.mask.sum(1).cpu(), batch.extra["target_lengths"].cpu(),
                          blank=0, reduction="sum").to(outputs.device)

    def loss(self, outputs, batch: Batch):
        return self.ctc(outputs, batch) / batch.extra["target_lengths"].sum()

    def edits(self, outputs, batch: Batch) -> list[int]:
        """Edit distance of each decoded transcript to its reference."""
        decoded = decode(outputs, batch.mask.sum(1), self.decoder, self.beam_width)
        references = [row[:length].tolist() for row, length in
                      zip(batch.targets, batch.extra["target_lengths"].tolist())]
        return [edit_distance(r, h) for r, h in zip(references, decoded)]

    def statistics(self, outputs, batch: Batch):
        import torch

        edits = torch.tensor(self.edits(outputs, batch), dtype=torch.float64)
        return {"nll": self.ctc(outputs, batch).double(),
                "labels": batch.extra["target_lengths"].sum().double().cpu(),
                "edits": edits.sum(), "correct": (edits == 0).sum().double(),
                "strings": torch.tensor(float(len(edits)), dtype=torch.float64)}

    def metrics(self, totals: Mapping[str, Any]) -> dict[str, float]:
        return {"ler": totals["edits"] / totals["labels"],
                "string_accuracy": totals["correct"] / totals["strings"],
                "ctc_loss": totals["nll"] / totals["labels"]}

    def item_scores(self, outputs, batch: Batch):
        import torch

        edits = torch.tensor(self.edits(outputs, batch), dtype=torch.float64)
        return edits, batch.extra["target_lengths"].double().cpu()

    def baselines(self) -> dict[str, dict[str, float]]:
        """The empty transcript (every label deleted: LER 1) and any reference computed
        with the data."""
        return {**self.references, "empty_output": {"ler": 1.0, "string_accuracy": 0.0}}

    # ---- using a trained model ----
    def transcribe(self, model, steps: list) -> list[str]:
        """Decoded transcripts of input steps, in batches."""
        import torch

        texts = []
        with torch.no_grad():
            device = next(model.parameters()).device
            for start in range(0, len(steps), 64):
                batch = collate(steps[start: start + 64], torch.zeros(0)).to(device)
                outputs = model(batch)[0]
                texts += [self.text(labels) for labels in decode(
                    outputs, batch.mask.sum(1), self.decoder, self.beam_width)]
        return texts

    def artifacts(self, model, run_dir: Path) -> list[Path]:
        """`asr.json` (alphabet, feature scaling, frame stacking), what transcribing new
        recordings needs, and for your recordings the split record."""
        path = run_dir / RECORD
        path.write_text(json.dumps({"alphabet": self.alphabet, "stack": self.stack,
                                    "mean": self.standardize.mean.tolist(),
                                    "std": self.standardize.std.tolist()}, indent=1) + "\n")
        return [path, *(self.source.write(run_dir) if self.source else [])]


def _summary(values: list[int]) -> tuple[float, ...]:
    return (min(values), float(np.median(values)), round(float(np.mean(values)), 1),
            max(values))


def audio_inputs(value: str) -> list[Path]:
    """The WAV files named by `input`: files and folders (every .wav in it), comma-separated."""
    paths = []
    for part in (p.strip() for p in value.split(",") if p.strip()):
        folder = Path(part).expanduser()
        if folder.is_dir():
            found = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".wav")
            if not found:
                raise SeqbenchError(f"'{folder}' has no .wav files to transcribe.")
            paths += found
        else:
            paths.append(existing_file(part, "recording"))
    return paths


class AsrTask(Task):
    name = "asr"
    summary = "Speech recognition with CTC: transcribe recordings (label error rate)"
    datasets = {
        "fsdd-connected": "connected digit strings (1-7 digits) built from the Free Spoken "
                          "Digit Dataset: 6,000 / 600 / 600 strings, no recording in two splits",
        "wav": "your WAV files and transcripts.csv (file,text[,split]) in one folder "
               "(--set path=DIR)",
    }
    default_dataset = "fsdd-connected"
    primary_metric = "ler"
    direction = "minimize"
    select_by = ("ctc_loss", "minimize")
    composes_cells = True
    defaults = {"epochs": 30, "hidden_size": 128, "batch_size": 32, "lr": 3e-3, "patience": 5}
    search = {"batch_size": (16, 64)}
    params = (
        Param("bidirectional", bool, False, "a second stack of the cell reads each utterance "
              "backwards (the same for every cell)", tune=False),
        Param("stack", int, 3, "consecutive 10 ms MFCC frames per model step", low=1, high=10,
              tune=False),
        Param("decoder", str, "greedy", "best path (greedy) or CTC prefix beam search",
              choices=("greedy", "beam"), tune=False),
        Param("beam_width", int, 8, "prefixes kept by the beam search", low=1, high=1024,
              tune=False),
        Param("train_strings", int, 6000, "fsdd-connected: training strings", low=1,
              high=1_000_000, tune=False),
        Param("valid_strings", int, 600, "fsdd-connected: validation strings", low=1,
              high=1_000_000, tune=False),
        Param("test_strings", int, 600, "fsdd-connected: test strings", low=1, high=1_000_000,
              tune=False),
        Param("max_digits", int, 7, "fsdd-connected: digits per string, at most (at least 1)",
              low=1, high=50, tune=False),
        Param("data_seed", int, 0, "fsdd-connected: which strings are drawn", low=0,
              high=2**32 - 1, tune=False),
        Param("path", str, "", "your folder of WAV files and transcripts.csv (dataset 'wav')",
              tune=False),
    )
    generate_params = (
        Param("input", str, "", "WAV files or folders to transcribe, comma-separated "
              "(default: the test split)"),
    )

    def prepare(self, dataset: str, context: DataContext, params: Mapping[str, Any]) -> AsrData:
        refuse_foreign_options(dataset, params, self.params, {
            "path": ("wav",), **{name: ("fsdd-connected",) for name in (
                "train_strings", "valid_strings", "test_strings", "max_digits", "data_seed")}})
        if dataset == "wav":
            from seqbench_tasks.asr.recordings import load_recordings

            splits, alphabet, source = load_recordings(params, context)
            return AsrData(dataset, splits, alphabet, params, source=source)
        from seqbench_tasks.asr.connected import load_connected

        connected, source = load_connected(context, params)
        return AsrData(dataset, connected.splits, "0123456789", params, source=source,
                       references={"oracle_segments_minirocket": connected.oracle})

    def check_case(self):
        """Hand-checkable transcripts for the conformance kit (see `check.py`)."""
        from seqbench_tasks.asr.check import asr_check_case

        return asr_check_case()

    def restore(self, dataset: str, params: Mapping[str, Any], run_dir: Path) -> AsrData | None:
        """Where your recordings' folder is gone, the alphabet and scaling from the run
        folder's asr.json, so `generate --input` needs none of the training files. While
        the folder is there it is loaded as for training (from the cache), which also
        gives `generate` its test recordings; fsdd-connected always is."""
        record = run_dir / RECORD
        if dataset != "wav" or not record.is_file() or Path(params["path"]).expanduser().is_dir():
            return None
        saved = json.loads(record.read_text())
        return AsrData(dataset, {}, saved["alphabet"], {**params, "stack": saved["stack"]},
                       standardize=Standardizer(np.array(saved["mean"]),
                                                np.array(saved["std"])))

    def generate(self, model, data: AsrData, out_dir: Path, options: Mapping[str, Any]):
        """`transcripts.csv` (file,text): of the given recordings, or of the test split with
        its reference transcripts beside them."""
        import torch

        if options["input"]:
            paths = audio_inputs(options["input"])
            names, references = [str(p) for p in paths], None
            steps = [torch.from_numpy(data.steps(mfcc(p))) for p in paths]
        elif data.items("test"):
            names, references = data.names["test"], data.transcripts["test"]
            steps = data.inputs["test"]
        else:
            raise SeqbenchError("this run's test recordings are not loaded; name the "
                                "recordings to transcribe (--input FILE.wav or --set "
                                "input=FILE.wav,DIR).")
        texts = data.transcribe(model, steps)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "transcripts.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "text", *(["reference"] if references else [])])
            for row, (name, text) in enumerate(zip(names, texts)):
                writer.writerow([name, text, *([references[row]] if references else [])])
        return [path]
