"""`seqbench export` / `sb.export`: a trained run's network as TorchScript and ONNX, loaded back
(torch.jit.load, ONNX Runtime) and giving the run's own outputs on test inputs of two
lengths, for lstm, gru and rnn on a task of each input kind: real features read to one label
(speech), a look-back window to a horizon (forecasting), token ids to the next token (lm).
Every run is one epoch of a small model on offline data, so the whole file takes seconds."""

from __future__ import annotations

import pytest
import torch

import seqbench as sb
from seqbench.cli import main
from seqbench.config import build_spec
from seqbench.exporter import example_inputs
from seqbench.runs import write_config

pytest.importorskip("onnxruntime")
CELLS = ("lstm", "gru", "rnn")
#: (task, dataset, settings): one task per kind of input and output.
TASKS = {
    "speech": ("speech", "japanese-vowels", {}),
    "forecasting": ("forecasting", "airline", {}),
    "lm": ("lm", "text", {"level": "char", "bptt": 16, "batch_size": 4}),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("the quick brown fox jumps over the lazy dog.\n" * 60)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus):
    """One small run per (task, cell), trained once for the module."""
    out = tmp_path_factory.mktemp("runs")
    runs = {}
    for kind, (task, dataset, settings) in TASKS.items():
        extra = {"path": str(corpus)} if kind == "lm" else {}
        for cell in CELLS:
            runs[kind, cell] = sb.run(task=task, cell=cell, dataset=dataset, epochs=1,
                                      hidden_size=8, progress=False, output_dir=out,
                                      **settings, **extra)
    return runs


@pytest.mark.parametrize("kind", TASKS)
@pytest.mark.parametrize("cell", CELLS)
def test_torchscript_and_onnx_give_the_runs_outputs(trained, kind, cell, tmp_path):
    import onnxruntime

    run = trained[kind, cell]
    inputs = example_inputs(run.data, run.spec.hparams["batch_size"])
    with torch.no_grad():
        expected = [run.model(x)[0] for x in inputs]
    scripted = torch.jit.load(str(sb.export(run.dir, "torchscript", tmp_path / "m.pt").path))
    session = onnxruntime.InferenceSession(str(run.export("onnx", tmp_path / "m.onnx")),
                                           providers=["CPUExecutionProvider"])
    for x, want in zip(inputs, expected):
        with torch.no_grad():
            torch.testing.assert_close(scripted(x), want, atol=1e-5, rtol=1e-4)
        got = session.run(None, {"inputs": x.numpy()})[0]
        torch.testing.assert_close(torch.from_numpy(got), want, atol=1e-5, rtol=1e-4)
    assert len(inputs) == 2 and inputs[0].shape[1] != inputs[1].shape[1]  # length is free


def test_the_command_writes_beside_the_run_and_says_how_close(trained, capsys):
    run = trained["speech", "gru"]
    assert main(["export", str(run.dir), "--format", "onnx"]) == 0
    out = capsys.readouterr().out
    assert str(run.dir / "model.onnx") in out and "checked with onnxruntime" in out
    assert (run.dir / "model.onnx").is_file()
    assert not list(run.dir.glob("*.partial"))


def test_a_task_that_composes_cells_is_refused_in_one_line(tmp_path, capsys):
    spec = build_spec("translation", "lstm", "parallel", {"source": "a.txt", "target": "b.txt"})
    write_config(tmp_path, spec)
    assert main(["export", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot export run") and "composes its cells" in err
    assert len(err.strip().splitlines()) == 1


def test_an_unknown_format_is_one_error_line(trained, capsys):
    assert main(["export", str(trained["speech", "lstm"].dir), "--format", "tflite"]) == 2
    assert "unknown export format 'tflite'" in capsys.readouterr().err


@pytest.mark.parametrize("cell, format, reason", [
    ("mingru", "onnx", "'aten::logcumsumexp'"),  # its parallel scan has no ONNX operator
    ("slstm", "onnx", "only runs at the sequence length it was traced at"),  # a Python loop
])
def test_a_cell_that_cannot_export_is_refused_in_one_line_with_the_reason(
        tmp_path, capsys, cell, format, reason):
    run = sb.run(task="speech", cell=cell, epochs=1, hidden_size=8, progress=False,
                 output_dir=tmp_path)
    capsys.readouterr()
    assert main(["export", str(run.dir), "--format", format]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot export cell '{cell}' (task 'speech') as {format}: ")
    assert reason in err and len(err.strip().splitlines()) == 1
    assert not list(run.dir.glob("model*"))  # nothing half-written is left
