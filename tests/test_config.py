"""Spec building: names, routing of --set keys, task defaults, the re-run command."""

import pytest

from seqbench import SeqbenchError
from seqbench.config import RunSpec, build_spec


def test_task_defaults_apply_and_settings_route_to_their_owner():
    spec = build_spec("music", "rnn", settings={"lr": "0.01", "nonlinearity": "relu"})
    assert spec.dataset == "bach"
    assert spec.hparams["lr"] == 0.01
    assert spec.hparams["batch_size"] == 16  # the music task's default
    assert spec.cell_params == {"nonlinearity": "relu"}


def test_spec_round_trips_through_its_dict_and_command():
    spec = build_spec("music", "lstm", settings={"cell.forget_bias": "1"}, seed=3)
    assert RunSpec.from_dict(spec.to_dict()) == spec
    assert "--set cell.forget_bias=1.0" in spec.command() and "--seed 3" in spec.command()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"settings": {"core.lr": 1}}, "unknown setting prefix 'core'"),
        ({"settings": {"cell.nonlinearity": "relu"}}, "unknown hyperparameter for cell 'lstm'"),
    ],
)
def test_invalid_specs_are_rejected_before_anything_runs(kwargs, message):
    with pytest.raises(SeqbenchError, match=message):
        build_spec("music", "lstm", **kwargs)
