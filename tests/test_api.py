"""The Python API: the acceptance one-liner, what a Run holds, one validated spec,
in-process plugins and their limits, and an import that stays free of torch."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import pytest
import torch

import seqbench as sb
from seqbench import registry
from seqbench.config import RunSpec, build_spec

ONE_LINER = ("import seqbench as sb; r = sb.run(task='speech', cell='gru', epochs=2); "
             "print(r.metrics['test_accuracy'], len(r.history))")


@pytest.fixture(autouse=True)
def fresh_registrations(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTERED", {"cell": {}, "task": {}})


def test_the_acceptance_one_liner(tmp_path):
    done = subprocess.run([sys.executable, "-c", ONE_LINER], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    accuracy, epochs = done.stdout.split()[-2:]
    assert 0.0 <= float(accuracy) <= 1.0 and epochs == "2"
    assert len(list((tmp_path / "runs").glob("speech-japanese-vowels-gru-seed0-*"))) == 1


def test_a_run_holds_the_best_epoch_model_and_load_reopens_it(tmp_path):
    run = sb.run(task="speech", cell="gru", epochs=3, hidden_size=8, output_dir=tmp_path,
                 progress=False)
    assert list(run.history["epoch"]) == [1, 2, 3]
    assert run.metrics["status"] == "completed" and run.spec.hparams["hidden_size"] == 8
    best = torch.load(run.dir / "best.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(value.cpu(), best[key]) for key, value in
               run.model.state_dict().items())
    assert not run.model.training

    again = sb.load(run.dir)
    assert again.metrics == run.metrics and again.spec == run.spec
    batch = next(iter(run.data.batches("test", 4)))
    with torch.no_grad():
        assert torch.equal(run.model(batch.inputs)[0], again.model(batch.inputs)[0])
    assert [path.name for path in again.generate(tmp_path / "out")] == ["predictions.csv"]


def test_spec_starts_from_a_recorded_run_and_what_is_given_overrides_it(tmp_path):
    first = sb.run(task="speech", cell="gru", epochs=1, hidden_size=8, seed=3,
                   output_dir=tmp_path, progress=False, **{"task.pooling": "mean"})
    for recorded in (first.dir, first.dir / "config.json", first.spec):
        spec = sb.spec_for(spec=recorded, epochs=2)
        assert spec == first.spec.with_settings({"epochs": 2})  # same seed, pooling, size
    assert sb.spec_for(spec=first.dir, seed=5, cell="lstm").cell == "lstm"
    on_cpu = build_spec("speech", "gru", settings={"hidden_size": "8"}, device="cpu")
    assert sb.spec_for(spec=on_cpu).device == "cpu"  # the recorded device is kept
    assert sb.spec_for(spec=on_cpu, device="auto").device == "auto"
    again = sb.run(spec=first.dir, output_dir=tmp_path, progress=False)
    assert again.metrics["test_accuracy"] == first.metrics["test_accuracy"]
    with pytest.raises(sb.SeqbenchError, match="not a run folder|does not exist"):
        sb.run(spec=tmp_path / "nowhere")


def test_a_spec_is_frozen_and_made_only_through_validation():
    with pytest.raises(TypeError, match="made by seqbench.config.build_spec"):
        RunSpec("music", "bach", "lstm")
    spec = build_spec("speech", "gru", settings={"hidden_size": "8"})
    with pytest.raises(TypeError):
        spec.hparams["hidden_size"] = 9
    with pytest.raises(AttributeError):
        spec.seed = 1
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert spec.with_settings({"lr": 0.1}).hparams["lr"] == 0.1
    with pytest.raises(sb.SeqbenchError, match="hidden_size"):
        spec.with_settings({"hidden_size": 0})
    with pytest.raises(sb.SeqbenchError, match="unknown cell 'gruu'"):
        RunSpec.from_dict({**spec.to_dict(), "cell": "gruu"})


def test_register_refuses_what_it_cannot_name_unambiguously():
    with pytest.raises(sb.SeqbenchError, match="already provided by seqbench"):
        sb.register(sb.Cell(name="lstm", summary="mine", build=torch.nn.LSTM))
    with pytest.raises(sb.SeqbenchError, match="takes a seqbench.Cell or seqbench.Task"):
        sb.register(torch.nn.LSTM)
    first = sb.register(sb.Cell(name="mine", summary="first", build=torch.nn.LSTM))
    second = sb.register(sb.Cell(name="mine", summary="second", build=torch.nn.GRU))
    assert registry.get_cell("mine") is second is not first  # a notebook re-ran its cell
    assert sb.cells()["mine"] == "second"
    assert registry.provenance("mine", "speech")["cell"]["distribution"] == registry.IN_PROCESS


def test_misused_arguments_are_one_clear_error(tmp_path):
    with pytest.raises(sb.SeqbenchError, match="run\\(\\) needs a task"):
        sb.run(cell="gru")
    with pytest.raises(sb.SeqbenchError, match="give no task, cell, dataset, seed, device, spec or settings"):
        sb.run(resume=tmp_path, epochs=3)
    with pytest.raises(sb.SeqbenchError, match="is not a run folder"):
        sb.load(tmp_path)
    with pytest.raises(sb.SeqbenchError, match="a list of names, e.g. cells=\\['gru'\\]"):
        sb.sweep(task="speech", cells="gru", output_dir=tmp_path)
    with pytest.raises(sb.SeqbenchError, match="expected a plugin name or a seqbench Cell"):
        sb.run(task=123, cell="gru", output_dir=tmp_path)
    with pytest.raises(sb.SeqbenchError, match="seed must be a whole number"):
        sb.run(task="speech", cell="gru", seed="1", output_dir=tmp_path)
    with pytest.raises(sb.SeqbenchError, match="--trials must be a whole number"):
        sb.sweep(task="speech", cells=["gru"], trials="3", output_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_import_seqbench_and_listing_plugins_load_no_torch():
    probe = ("import sys, seqbench as sb; sb.cells(); sb.tasks(); sb.run; "
             "print(sorted(m for m in ('torch', 'lightning', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_register_runs_the_declaration_checks_a_loaded_plugin_gets():
    with pytest.raises(sb.SeqbenchError, match="cell 'bad': malformed declaration: "
                       "Cell.summary must be a non-empty string"):
        sb.register(sb.Cell(name="bad", summary="", build=torch.nn.LSTM))


def test_old_import_paths_still_read_with_a_warning_and_sb_data_stays_the_api():
    """`seqbench.data` became `seqbench.datafiles` (so that `sb.data` can be `seqbench data`)
    and the core hyperparameters left `seqbench.config`; plugins importing the old paths keep
    working, told where the names went."""
    from seqbench import core_params, datafiles

    with pytest.warns(DeprecationWarning, match="seqbench.data.cached moved to seqbench.datafiles"):
        from seqbench.data import cached
    assert cached is datafiles.cached
    assert sb.data.__module__ == "seqbench.api"  # the import bound no module over it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # what pickle and importlib probe is not warned at
        for name in ("torch", "__path__", "_private", "no_such_name"):
            assert not hasattr(sys.modules["seqbench.data"], name)
    with pytest.warns(DeprecationWarning, match="seqbench.config.CORE_PARAMS moved"):
        from seqbench.config import CORE_PARAMS
    assert CORE_PARAMS is core_params.CORE_PARAMS
