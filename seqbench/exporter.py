"""Export a trained run's network for use outside seqbench: TorchScript or ONNX.

What is exported is the run's `encoder -> cell -> head` from a zero state: `inputs[B, T, ...]`
as the task's batches hold them (token ids, or features already scaled as the task scales
them) in, the head's outputs out, the very tensor `sb.load(run).model(inputs)[0]` returns.
The task's reading of those outputs (a classifier's last real frame, a forecast's last value
added back) stays with the caller, as it does for `run.model`. Batch size and sequence
length are free in both formats.

An export is only useful if it computes what the run's model computes, so every export is
run on a batch of the run's own test inputs, at its length and at a shorter one, and compared
with the model before the file is kept: TorchScript by loading it back with
`torch.jit.load`, ONNX with onnxruntime (`pip install 'seqbench[export]'`). A task that
composes its cells (an encoder-decoder that decodes step by step, `Task.composes_cells`)
has no single forward to export, and a cell that cannot be traced or converted is refused in
one line that names the cell and the exporter's reason.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqbench.errors import SeqbenchError

#: Format name -> file suffix.
FORMATS = {"torchscript": ".pt", "onnx": ".onnx"}
#: Test sequences in the example batch (enough to see batch-size freedom, quick to run).
EXAMPLES = 4
#: An exported float32 model must match the run's model to this (float32 rounding of the
#: same arithmetic in another order, as fused kernels and ONNX Runtime do).
ATOL, RTOL = 1e-5, 1e-4


@dataclass(frozen=True)
class Exported:
    """An exported file and how closely it reproduced the run's model."""

    path: Path
    format: str
    #: Largest |exported - model| over the check batches.
    max_difference: float
    #: The (batch, length) shapes it was checked on, and by what.
    checked_on: list[tuple[int, ...]]
    checked_with: str


def network(model: Any) -> Any:
    """The run's `encoder -> cell -> head` as one module with a plain `forward(inputs)`."""
    from torch import nn

    class Network(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.cell, self.head = model.encoder, model.cell, model.head

        def forward(self, inputs):
            features, _ = self.cell(self.encoder(inputs))
            return self.head(features)

    return Network().eval()


def example_inputs(data: Any, batch_size: int) -> list[Any]:
    """The first test batch's inputs (at most `EXAMPLES` sequences), whole and cut to about
    half its length, so the check sees that neither size is baked into the export."""
    batch = next(iter(data.batches("test", batch_size)))
    inputs = batch.inputs[:EXAMPLES]
    steps = inputs.shape[1]
    return [inputs] if steps < 2 else [inputs, inputs[:, : max(1, steps // 2)].contiguous()]


def export(run_dir: str | os.PathLike[str], format: str, out: str | os.PathLike[str] | None = None,
           data_dir: str | os.PathLike[str] | None = None) -> Exported:
    """Export a finished run's model as `format` (torchscript or onnx) to `out` (default
    RUN_DIR/model.pt or model.onnx) and check it against the model on test inputs."""
    import torch

    from seqbench import registry, runs
    from seqbench.train import load_trained

    if format not in FORMATS:
        raise SeqbenchError(f"unknown export format '{format}'; choose from "
                            f"{', '.join(FORMATS)}.")
    run_dir = Path(run_dir)
    spec = runs.read_spec(run_dir)
    if registry.get_task(spec.task).composes_cells:
        raise SeqbenchError(
            f"cannot export run '{run_dir}': task '{spec.task}' composes its cells into a "
            "network that takes whole batches and decodes step by step, so there is no single "
            "inputs -> outputs function to export; use sb.load(run).model in Python.")
    target = Path(out) if out else run_dir / f"model{FORMATS[format]}"
    runs.check_output_dir(target.parent, "--output")
    target.parent.mkdir(parents=True, exist_ok=True)
    _, data, model = load_trained(run_dir, data_dir, "cpu")
    net = network(model)
    examples = example_inputs(data, spec.hparams["batch_size"])
    with torch.no_grad():
        expected = [net(x) for x in examples]
    partial = target.with_name(target.name + ".partial")
    refused = f"cannot export cell '{spec.cell}' (task '{spec.task}') as {format}"
    try:
        check = (_torchscript if format == "torchscript" else _onnx)(net, examples[0], partial)
        difference = compare(check, examples, expected, refused)
    except SeqbenchError:
        partial.unlink(missing_ok=True)
        raise
    except Exception as exc:  # noqa: BLE001 - the exporter's reason, in one line
        partial.unlink(missing_ok=True)
        raise SeqbenchError(f"{refused}: {first_line(exc)}") from None
    partial.replace(target)
    return Exported(target, format, difference, [tuple(x.shape[:2]) for x in examples],
                    "torch.jit.load" if format == "torchscript" else "onnxruntime")


def compare(check: Any, examples: list[Any], expected: list[Any], refused: str) -> float:
    """The largest difference between the export and the model over the examples, or a
    one-line refusal. The export is traced at the first example's length; a cell that steps
    through time in Python is unrolled to exactly that length, so it fails or differs at the
    second, shorter one: that is said as such, not in the interpreter's words."""
    import torch

    def fixed_length(steps: int, what: str) -> SeqbenchError:
        return SeqbenchError(
            f"{refused}: the export only runs at the sequence length it was traced at "
            f"({examples[0].shape[1]} steps; at {steps} it {what}), as when a cell steps "
            "through time in Python and tracing unrolls the loop.")

    difference = 0.0
    for index, (inputs, want) in enumerate(zip(examples, expected)):
        try:
            got = torch.as_tensor(check(inputs))
        except Exception as exc:  # noqa: BLE001 - the exporter's reason, in one line
            if index == 0:
                raise
            raise fixed_length(inputs.shape[1], f"fails: {first_line(exc)}") from None
        if got.shape != want.shape or not torch.allclose(got, want, atol=ATOL, rtol=RTOL):
            if index > 0:
                raise fixed_length(inputs.shape[1], "gives other outputs")
            error = float((got - want).abs().max()) if got.shape == want.shape else math.inf
            raise SeqbenchError(f"{refused}: the exported model differs from the run's by up "
                                f"to {error:.3g} on its test inputs.")
        difference = max(difference, float((got - want).abs().max()))
    return difference


def first_line(exc: BaseException) -> str:
    """An exception's first non-empty line (exporters write pages), else its type."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _torchscript(net: Any, example: Any, path: Path):
    """Trace (scripting rejects most plugin cells' Python), save, load back; the loaded
    module is what is checked."""
    import torch

    with torch.no_grad():
        traced = torch.jit.trace(net, (example,), check_trace=False)
    torch.jit.save(traced, str(path))
    loaded = torch.jit.load(str(path))

    def run(inputs):
        with torch.no_grad():
            return loaded(inputs)

    return run


def _onnx(net: Any, example: Any, path: Path):
    """torch.onnx's TorchScript-based exporter with batch and length free, checked by onnx's
    checker and run by onnxruntime.

    Not the dynamo exporter (`dynamo=True`, torch's default): in torch 2.13 it fixes the
    sequence length of `nn.RNN` to the example's (ONNX Runtime then refuses any other length)
    and declares the example's length as the output length of `nn.LSTM` and `nn.GRU`; the
    TorchScript-based one maps all three onto ONNX's own RNN, GRU and LSTM operators, whose
    length is free.
    """
    import warnings

    import torch

    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise SeqbenchError(f"ONNX export needs onnx and onnxruntime ({exc.name} is missing): "
                            "pip install 'seqbench[export]'.") from None
    free = {0: "batch", 1: "steps"}
    with warnings.catch_warnings():  # the exporter's deprecation and tracer notes
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (example,), str(path), input_names=["inputs"],
                          output_names=["outputs"], dynamo=False,
                          dynamic_axes={"inputs": free, "outputs": free})
    onnx.checker.check_model(str(path))
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(inputs):
        return torch.from_numpy(session.run(None, {"inputs": inputs.numpy()})[0])

    return run
