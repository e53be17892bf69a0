"""Baselines a published study lacks are added from each final's recorded spec
(`seqbench.sweeps.baselines`): the published airline study, with its statsforecast rows taken
out, gets exactly the published values back, and a study whose recorded baseline no longer
comes out (other data, another split) is refused with nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest

from seqbench.errors import SeqbenchError
from seqbench.sweeps import record
from seqbench.sweeps.baselines import add_missing_baselines
from seqbench.sweeps.storage import open_storage

ROOT = Path(__file__).resolve().parents[1]
STATISTICAL = ("auto_arima", "ets", "theta")


@pytest.fixture
def airline_gru(tmp_path):
    """The published airline gru study and its final run records, copied into tmp_path."""
    pytest.importorskip("statsforecast", reason="the statistical baselines need statsforecast")
    name = "airline/forecasting/airline/gru"
    journal = str(tmp_path / "studies.journal")
    optuna.copy_study(from_study_name=name, to_storage=open_storage(journal),
                      from_storage=open_storage(str(ROOT / "results" / "studies.journal")))
    shutil.copytree(ROOT / "results" / "finals" / "airline", tmp_path / "finals" / "airline")
    return journal, name


def rewrite_baselines(journal: str, name: str, change) -> dict:
    """Replace every final's recorded baselines with `change(baselines)`; the originals."""
    study = optuna.load_study(study_name=name, storage=open_storage(journal))
    found = record.read(study.user_attrs)
    originals = {}
    for final in found.finals:
        originals[final.seed] = dict(final.metrics["baselines"])
        record.write_final(study, record.Final(
            final.seed, final.run_dir, final.trial,
            {**final.metrics, "baselines": change(dict(final.metrics["baselines"]))}))
    return originals


def recorded_baselines(journal: str, name: str) -> dict:
    study = optuna.load_study(study_name=name, storage=open_storage(journal))
    return {final.seed: final.metrics["baselines"]
            for final in record.read(study.user_attrs).finals}


def test_the_missing_rows_come_back_as_published(airline_gru):
    journal, name = airline_gru
    published = rewrite_baselines(journal, name, lambda baselines: {
        key: value for key, value in baselines.items() if key not in STATISTICAL})
    assert add_missing_baselines(journal, "airline") == {name: list(STATISTICAL)}
    again = recorded_baselines(journal, name)
    for seed, baselines in published.items():
        assert again[seed].keys() == baselines.keys()
        for baseline in STATISTICAL:
            assert again[seed][baseline]["test_mase"] == pytest.approx(
                baselines[baseline]["test_mase"], rel=1e-6)
    assert add_missing_baselines(journal, "airline") == {}  # nothing left to add


def test_a_recorded_baseline_that_no_longer_comes_out_refuses_and_writes_nothing(airline_gru):
    journal, name = airline_gru

    def other_split(baselines):
        kept = {key: value for key, value in baselines.items() if key not in STATISTICAL}
        kept["naive"] = {**kept["naive"], "test_mase": kept["naive"]["test_mase"] * 1.01}
        return kept

    rewrite_baselines(journal, name, other_split)
    before = recorded_baselines(journal, name)
    with pytest.raises(SeqbenchError, match="baseline 'naive' test_mase comes out .* the data "
                                            "or the split changed, so nothing was added"):
        add_missing_baselines(journal, "airline")
    assert recorded_baselines(journal, name) == before
