"""The sweep protocol (issue 14): trials train on the data they ask for, a trial replays
exactly, seeds come from one SeedSequence and are recorded, defaults come first, selection
re-runs the top, folds, priors."""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pytest

from seqbench.cli import main
from seqbench.config import build_spec
from seqbench.errors import SeqbenchError
from seqbench.sweeps import record, seeds, studies
from seqbench.sweeps import space as search_space
from seqbench.sweeps.plan import SweepPlan
from seqbench.sweeps.prepared import PreparedData
from seqbench.sweeps.runner import check_data, run_sweep
from seqbench.sweeps.select import choose, one_standard_error, rerun, rerun_jobs, rerun_requests
from seqbench.sweeps.storage import open_storage
from seqbench.sweeps.workers import run_jobs
from seqbench.train import load_trained

SPEECH = {"epochs": "2", "hidden_size": "8", "batch_size": "64"}


def speech_plan(tmp_path: Path, **changes) -> SweepPlan:
    settings = {**SPEECH, **changes.pop("settings", {})}
    return SweepPlan(task="speech", dataset="japanese-vowels", cells=("gru",), trials=2, seeds=1,
                     storage=str(tmp_path / "sweeps.journal"), settings=settings, top=2,
                     rerun_seeds=1, output_dir=str(tmp_path), pruner="none", **changes)


def study_of(plan: SweepPlan, cell: str = "gru"):
    return optuna.load_study(study_name=plan.study_name(cell), storage=open_storage(plan.storage))


def record_of(plan: SweepPlan, cell: str = "gru") -> record.StudyRecord:
    return record.read(study_of(plan, cell).user_attrs)


def replay(config: Path, tmp_path: Path) -> dict:
    """`seqbench run --spec CONFIG` into a fresh folder; its metrics."""
    out = tmp_path / f"replay-{len(list(tmp_path.glob('replay-*')))}"
    assert main(["run", "--spec", str(config), "--output-dir", str(out), "--quiet"]) == 0
    (run_dir,) = out.iterdir()
    return json.loads((run_dir / "metrics.json").read_text())


def test_prepared_data_is_cached_by_the_task_parameters_prepare_reads():
    cache = PreparedData(None)
    last = build_spec("speech", "gru", settings={"pooling": "last"})
    mean = build_spec("speech", "gru", settings={"pooling": "mean"})
    wider = build_spec("speech", "gru", settings={"pooling": "last", "hidden_size": 99})
    assert cache.get(last).pooling == "last" and cache.get(mean).pooling == "mean"
    assert cache.get(wider) is cache.get(last)  # hidden_size is not a data parameter
    assert cache.prepared == 2


def test_a_tuned_data_side_parameter_changes_what_the_trial_trains_on(tmp_path):
    """The bug: data was prepared once from the base spec, so a sampled `pooling=mean` was
    recorded but the trial trained with `last`. Trial 1 is made to sample `mean`; replaying
    its recorded spec (which prepares the data from scratch) must give its exact value."""
    plan = speech_plan(tmp_path, folds=1)
    study = studies.create(plan, "gru")
    study.enqueue_trial({"task.pooling": "mean"})
    run_sweep(plan)
    trial = study_of(plan).trials[1]
    assert trial.params["task.pooling"] == "mean"
    config = Path(trial.user_attrs["run_dir"]) / "config.json"
    assert json.loads(config.read_text())["spec"]["task_params"]["pooling"] == "mean"
    replayed = replay(config, tmp_path)
    assert replayed["best_val_nll"] == trial.value
    # and pooling matters here: the same configuration with `last` scores differently
    spec = json.loads(config.read_text())
    spec["spec"]["task_params"]["pooling"] = "last"
    other = tmp_path / "last.json"
    other.write_text(json.dumps(spec))
    assert replay(other, tmp_path)["best_val_nll"] != trial.value


def test_a_trial_replays_exactly_fold_by_fold_and_finals_use_disjoint_seeds(tmp_path):
    plan = speech_plan(tmp_path, folds=3, refit=True, seed=5000)  # no cap on --seed
    run_sweep(plan)
    study, recorded = study_of(plan), record_of(plan)
    tree = seeds.SeedTree(5000)
    (final_seed,) = recorded.final_seeds
    assert final_seed == tree.draw(seeds.FINAL, 0) and recorded.protocol.folds == 3
    best = study.trials[recorded.selection.chosen]
    folds = sorted(Path(best.user_attrs["run_dir"]).glob("fold-*/config.json"))
    assert len(folds) == 3
    values = [replay(config, tmp_path)["best_val_nll"] for config in folds]
    assert sum(values) / 3 == pytest.approx(best.value, rel=1e-12)
    (final,) = recorded.finals
    assert final.metrics["seed"] == final_seed and final.trial == best.number
    config = json.loads((Path(final.run_dir) / "config.json").read_text())
    assert config["trial"] == best.number and config["study"] == plan.study_name("gru")
    assert config["seed_origin"] == {"scheme": "seed-sequence", "entropy": 5000,
                                     "spawn_key": [seeds.FINAL, 0]}
    # --refit: finals train on every training item, for the median best epoch of the chosen
    # configuration's fold runs in selection, and keep their last weights.
    assert "--refit" in recorded.command
    hparams = config["spec"]["hparams"]
    assert (hparams["folds"], hparams["refit"]) == (1, True)
    fold_best = [json.loads(p.read_text())["best_epoch"] for p in
                 Path(tmp_path, "selection").rglob(f"trial-{best.number:04d}-rerun0/fold-*/metrics.json")]
    assert len(fold_best) == 3 and hparams["epochs"] == round(statistics.median(fold_best))
    assert recorded.refit_epochs == hparams["epochs"]
    assert final.metrics["split_sizes"]["train"] == 270
    assert final.metrics["best_epoch"] == final.metrics["epochs"] == hparams["epochs"]
    _, data, _ = load_trained(final.run_dir)  # reloaded with the data it trained on
    assert len(data.labels["train"]) == 270
    # Every run record names the spawn key its seed came from, and the seeds of search
    # trials and selection re-runs (per trial or re-run, per fold) are never a final's.
    records = [json.loads(p.read_text()) for stage in ("trials", "selection")
               for p in Path(tmp_path, stage).rglob("config.json")]
    for stage, run in ((r["stage"], r) for r in records):
        key = run["seed_origin"]["spawn_key"]
        assert key[0] == {"search": seeds.SEARCH, "selection": seeds.RERUN}[stage]
        assert run["spec"]["seed"] == tree.draw(*key) != final_seed
    reruns = [r for r in records if r["stage"] == "selection"]
    assert {tuple(r["seed_origin"]["spawn_key"]) for r in reruns} == {
        (seeds.RERUN, 0, 0, fold) for fold in range(3)}  # candidates share their seeds


def test_the_first_trial_is_the_task_default_configuration(tmp_path):
    plan = speech_plan(tmp_path, folds=1)
    study = studies.create(plan, "gru")
    (first,) = study.get_trials(deepcopy=False)
    assert first.state.name == "WAITING" and first.user_attrs["defaults"] is True
    point = first.system_attrs["fixed_params"]
    defaults = build_spec("speech", "gru", settings=SPEECH)
    assert point == {"lr[adam]": defaults.hparams["lr"], "layers": defaults.hparams["layers"],
                     "dropout": 0.0, "optimizer": "adam", "clip": defaults.hparams["clip"],
                     "task.pooling": "last"}
    studies.create(plan, "gru")  # opening again enqueues nothing more
    assert len(study.get_trials(deepcopy=False)) == 1


def test_each_optimizer_searches_its_own_learning_rate_range_and_sgd_is_left_out():
    space = search_space.tunable("music", "lstm", "bach")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        values = search_space.suggest(trial, space, build_spec("music", "lstm").settings())
        low, high = {"adam": (1e-4, 1e-2), "rmsprop": (1e-4, 3e-3)}[values["optimizer"]]
        assert low <= values["lr"] <= high
        assert f"lr[{values['optimizer']}]" in trial.params
        seen.add(values["optimizer"])
        study.tell(trial, 0.0)
    assert seen == {"adam", "rmsprop"}
    fixed = search_space.without_fixed(space, {"optimizer": "sgd"})
    trial = study.ask()
    base = build_spec("music", "lstm", settings={"optimizer": "sgd"}).settings()
    assert 0.03 <= search_space.suggest(trial, fixed, base)["lr"] <= 30


def test_tasks_narrow_the_core_search_ranges_per_dataset():
    airline = search_space.tunable("forecasting", "lstm", "airline")
    assert airline["batch_size"].search_range == (2, 8)
    assert search_space.tunable("music", "lstm", "jsb")["layers"].search_range == (1, 2)
    assert build_spec("forecasting", "lstm", "airline").hparams["batch_size"] == 4
    assert build_spec("forecasting", "lstm", "m1-yearly").hparams["batch_size"] == 16
    etth1 = build_spec("forecasting", "lstm", "etth1").hparams  # Informer's schedule
    assert (etth1["batch_size"], etth1["patience"], etth1["epochs"]) == (32, 3, 10)


def test_airline_mase_uses_the_seasonal_naive_error_of_the_whole_history():
    """Hyndman & Koehler's scale: the in-sample seasonal-naive MAE over every month before
    the forecast origin (108 months), not over the 72 training months only."""
    from aeon.datasets import load_airline

    from seqbench_tasks.forecasting.task import ForecastingTask

    y = np.asarray(load_airline(), dtype=float)
    scale = np.mean(np.abs(y[12:108] - y[:96]))
    forecast = np.concatenate([y[96:108]] * 3)  # repeat the last observed year
    by_hand = np.mean(np.abs(y[108:144] - forecast)) / scale
    data = ForecastingTask().prepare("airline", None, build_spec("forecasting", "lstm")
                                     .task_params)
    assert data.baselines()["seasonal_naive"]["mase"] == pytest.approx(by_hand, rel=1e-5)


def test_rolling_origin_folds_move_the_validation_origin_back_and_keep_the_test():
    from seqbench_tasks.forecasting.task import ForecastingTask

    data = ForecastingTask().prepare("airline", None, build_spec("forecasting", "lstm")
                                     .task_params)
    folds = [data.fold(i, 3) for i in range(3)]
    assert [int(f.starts["valid"][0]) for f in folds] == [60, 66, 72]
    for fold in folds:
        assert fold.starts["train"].max() + 36 <= fold.starts["valid"][0]  # no leak
        assert list(fold.starts["test"]) == list(data.starts["test"])
    with pytest.raises(Exception, match="no training window"):
        data.fold(0, 12)


def test_refit_trains_on_the_validation_items_too_and_keeps_the_test():
    from seqbench_tasks.forecasting.task import ForecastingTask
    from seqbench_tasks.speech.task import SpeechTask

    speech = SpeechTask().prepare("japanese-vowels", None, build_spec("speech", "gru")
                                  .task_params)
    refit = speech.refit()
    assert len(refit.labels["train"]) == 270  # the whole official training set
    for split in ("valid", "test"):
        assert refit.labels[split].tolist() == speech.labels[split].tolist()
    airline = ForecastingTask().prepare("airline", None, build_spec("forecasting", "lstm")
                                        .task_params)
    refit = airline.refit()
    assert refit.starts["train"].max() + 36 == airline.starts["test"][0]  # up to the origin
    assert list(refit.starts["test"]) == list(airline.starts["test"])
    assert airline.starts["train"].max() + 36 == airline.starts["valid"][0]  # unchanged
    with pytest.raises(SeqbenchError, match="cannot be combined with folds=3"):
        build_spec("speech", "gru", settings={"refit": "true", "folds": "3"})


def test_resuming_with_refit_updates_the_command_reports_print(tmp_path):
    plan = speech_plan(tmp_path, folds=1)
    studies.create(plan, "gru")
    assert "--refit" not in record_of(plan).command
    studies.create(replace(plan, refit=True), "gru")
    assert "--refit" in record_of(plan).command and record_of(plan).plan["refit"] is True


def test_extending_the_budget_updates_the_command_reports_print(tmp_path):
    plan = speech_plan(tmp_path, folds=1)
    studies.create(plan, "gru")
    studies.create(replace(plan, jobs=2), "gru")  # the same result
    assert record_of(plan).plan["jobs"] == 1
    studies.create(replace(plan, trials=4), "gru")
    assert "--trials 4" in record_of(plan).command and record_of(plan).plan["trials"] == 4
    studies.create(plan, "gru")  # a smaller budget adds nothing: the 4-trial command stays
    assert "--trials 4" in record_of(plan).command


def test_a_study_resumes_only_under_its_own_protocol_and_its_siblings(tmp_path):
    """Resuming under other settings would mix two protocols in one study, and a cell added
    under other settings would be compared with siblings tuned differently: both refused
    before anything is written. Equal values written differently, and the folds the task
    declares given explicitly, are the same protocol."""
    plan = speech_plan(tmp_path, settings={"lr": "1e-3"})
    studies.create(plan, "gru")
    same = [replace(plan, **change) for change in (
        {}, {"settings": {**plan.settings, "lr": "0.001"}}, {"folds": plan.selection_folds()},
        {"trials": 5, "jobs": 2, "refit": True}, {"cells": ("rnn",)})]
    for resumed in same:
        studies.check(resumed)
    other = [({"settings": {**plan.settings, "epochs": "3"}}, "settings"),
             ({"seeds": 3}, "seeds=1 (now 3)"), ({"folds": 1}, "folds=5 (now 1)"),
             ({"rerun_seeds": None}, "rerun_seeds=1 (now 2)"),
             ({"cells": ("rnn",), "top": 1}, "top=2 (now 1)")]
    for change, message in other:
        with pytest.raises(SeqbenchError, match=re.escape(message)):
            studies.check(replace(plan, **change))


def version_1(study, **protocol) -> None:
    """Make a study's record look as sweeps before the versioned record wrote it."""
    recorded = {**study.user_attrs["protocol"], **protocol}
    for key in ("pruning_sees_best_so_far", "min_pairs", "threads"):
        recorded.pop(key, None) if key not in protocol else None
    study.set_user_attr("protocol", recorded)
    study.set_user_attr("version", 1)


def test_a_cell_added_to_a_sweep_prunes_selects_and_seeds_as_its_siblings_did(tmp_path):
    """A staged sweep (`--cells lstm,gru`, later `--cells rnn`) must tune every cell under
    one rule, even when the siblings ran before pruning saw the best value so far, before
    selection needed five pairs, and before seeds came from a SeedSequence."""
    plan = speech_plan(tmp_path, folds=1)
    studies.create(plan, "gru")
    first = record_of(plan).protocol
    assert (first.pruning_sees_best_so_far, first.min_pairs) == (True, record.MIN_PAIRS)
    studies.create(plan, "rnn")
    assert record_of(plan, "rnn").protocol == first

    older = replace(plan, study="older")
    version_1(studies.create(older, "gru"))  # as a sweep begun before the rules
    studies.create(older, "lstm")
    added = record_of(older, "lstm")
    assert (added.protocol.pruning_sees_best_so_far, added.protocol.min_pairs) == (False, 2)
    assert added.seeding == seeds.Offsets(0) and added.final_seeds == [1000]
    other_dataset = replace(older, dataset="fsdd")
    studies.create(other_dataset, "lstm")  # not a sibling: another dataset
    assert record_of(other_dataset, "lstm").protocol.pruning_sees_best_so_far

    mixed = replace(plan, study="mixed")
    studies.create(mixed, "gru")
    version_1(studies.create(mixed, "lstm"), pruning_sees_best_so_far=True)  # merged by hand
    with pytest.raises(SeqbenchError, match="the cells of sweep 'mixed' in .* disagree on "
                                            "what pruning compares"):
        studies.create(mixed, "rnn")


def test_a_published_study_reads_through_the_version_1_migration():
    """The published journals predate the versioned record: they read with the seeds,
    protocol and selection their sweeps used, and only their own finals count."""
    root = Path(__file__).resolve().parents[1]
    storage = open_storage(str(root / "results" / "studies.journal"))
    jv = record.read(optuna.load_study(study_name="jv/speech/japanese-vowels/gru",
                                       storage=storage).user_attrs)
    assert (jv.version, jv.repeat, jv.seeding) == (1, 0, seeds.Offsets(0))
    assert jv.seeds == {"search": [0], "rerun": [1, 2], "final": [1000, 1001, 1002, 1003, 1004]}
    assert [f.seed for f in jv.finals] == jv.final_seeds
    assert jv.protocol == record.Protocol(folds=5, top=3, rerun_seeds=2, startup_trials=10,
                                          pruning_sees_best_so_far=False, min_pairs=2,
                                          threads=None)
    assert jv.selection.chosen in jv.selection.means and jv.selection.rule is None
    assert [seeds.Offsets(0).draw(seeds.FINAL, i) for i in range(5)] == jv.final_seeds
    assert seeds.Offsets(0).draw(seeds.RERUN, 0, 1, 3) == 2
    nottingham = record.read(optuna.load_study(study_name="nottingham/music/nottingham/gru",
                                               storage=storage).user_attrs)
    assert nottingham.protocol.pruning_sees_best_so_far is True  # recorded, so kept
    with pytest.raises(SeqbenchError, match="newer seqbench"):
        record.read({**study_attrs(jv), "version": record.VERSION + 1})


def study_attrs(found: record.StudyRecord) -> dict:
    return {"task": found.task, "dataset": found.dataset, "cell": found.cell,
            "primary_metric": found.primary_metric, "direction": found.direction}


def test_refit_is_refused_before_the_search_where_the_task_cannot_refit(toy_task, tmp_path):
    plan = SweepPlan(task=toy_task, dataset="tiny", cells=("gru",), trials=2, seeds=1,
                     storage=str(tmp_path / "sweeps.journal"), output_dir=str(tmp_path),
                     refit=True)
    with pytest.raises(SeqbenchError, match="MusicData cannot train on its validation items"):
        check_data(plan)
    with pytest.raises(SeqbenchError, match="not a setting of every trial: use --refit"):
        replace(plan, refit=False, settings={"refit": "true"})  # trials would train on
        # their own validation items


def test_stratified_folds_partition_the_training_set_and_keep_every_class():
    from seqbench_tasks.speech.task import SpeechTask

    data = SpeechTask().prepare("japanese-vowels", None, build_spec("speech", "gru")
                                .task_params)
    folds = [data.fold(i, 5) for i in range(5)]
    sizes = [len(f.labels["valid"]) for f in folds]
    assert sum(sizes) == 270 and set(sizes) == {54}
    for fold in folds:
        assert len(set(fold.labels["valid"].tolist())) == 9
        assert len(fold.labels["train"]) + len(fold.labels["valid"]) == 270


def test_output_biases_start_from_the_training_data_as_the_baselines_do():
    """A model whose head weights are zero predicts exactly its bias: for music that must be
    the per-key marginal baseline, for speech the class prior (the majority-class row)."""
    import torch

    from seqbench_tasks.music.task import MusicData

    rng = np.random.default_rng(0)
    rolls = {split: [(rng.random((12, 88)) < 0.1).astype(np.uint8) for _ in range(5)]
             for split in ("train", "valid", "test")}
    data = MusicData("tiny", rolls)
    head = data.head(4, {})
    head.weight.data.zero_()
    totals = {}
    with torch.no_grad():
        for batch in data.batches("test", 2):
            for key, value in data.statistics(head(torch.zeros(*batch.inputs.shape[:2], 4)),
                                              batch).items():
                totals[key] = totals.get(key, 0) + value
    from seqbench import plain_totals

    marginal = data.baselines()["per_key_marginal"]
    assert data.metrics(plain_totals(totals))["nll"] == pytest.approx(marginal["nll"], rel=1e-5)
    assert data.baselines()["per_key_markov"]["nll"] < marginal["nll"] * 1.5


def test_speech_prior_bias_and_the_majority_class_baseline():
    import torch

    from seqbench_tasks.speech.task import SpeechTask

    data = SpeechTask().prepare("japanese-vowels", None, build_spec("speech", "gru")
                                .task_params)
    head = data.head(4, {})
    counts = torch.bincount(data.labels["train"], minlength=9).double() + 1
    assert torch.allclose(head.bias.double().exp(), counts / counts.sum(), atol=1e-6)
    majority = data.baselines()["majority_class"]
    test = data.labels["test"].numpy()
    chosen = int(torch.argmax(head.bias))
    assert majority["accuracy"] == pytest.approx(np.mean(test == chosen))


def test_early_stopping_waits_for_the_declared_minimum_and_counts_from_the_best_epoch():
    """Patience runs out at epoch 3, but nothing stops before epoch 6; epoch 5 improved, so
    the run stops at epoch 7, two epochs after its best (Lightning's own min_epochs would
    have stopped it at 6 on the request left from epoch 3)."""
    from types import SimpleNamespace

    import torch
    from lightning.pytorch.trainer.states import TrainerFn

    from seqbench.best import EarlyStoppingAfterMinimum

    stopper = EarlyStoppingAfterMinimum("val_nll", "min", patience=2, min_epochs=6, min_steps=0)
    trainer = SimpleNamespace(
        sanity_checking=False, fast_dev_run=False, should_stop=False, global_step=0,
        current_epoch=0, state=SimpleNamespace(fn=TrainerFn.FITTING), callback_metrics={},
        strategy=SimpleNamespace(reduce_boolean_decision=lambda decision, all=True: decision))
    for epoch, value in enumerate([1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5]):
        trainer.current_epoch = epoch
        trainer.callback_metrics = {"val_nll": torch.tensor(value)}
        stopper.on_validation_end(trainer, None)
        if trainer.should_stop:
            break
    assert trainer.current_epoch + 1 == 7


def test_a_task_default_outside_the_searched_choices_is_searched_too():
    """lm defaults to SGD (Zaremba); SGD is not in the default optimizer space, but the first
    trial is the defaults, so SGD (with its own learning-rate range) must be a choice."""
    space = search_space.tunable("lm", "lstm", "ptb")
    assert space["optimizer"].search_choices == ("adam", "rmsprop", "sgd")
    point = search_space.default_point(space, build_spec("lm", "lstm", "ptb").settings())
    assert point["optimizer"] == "sgd" and point["lr[sgd]"] == 20.0
    assert space["lr"].range_given("sgd")[0] <= 20.0 <= space["lr"].range_given("sgd")[1]


def keyed(values: list[float]) -> dict[tuple[int, int], float]:
    """Re-run values keyed (seed, fold) as `select` records them: 2 folds per seed."""
    return {(1 + i // 2, i % 2): value for i, value in enumerate(values)}


def test_the_default_is_kept_unless_a_tuned_configuration_beats_it_by_a_standard_error():
    def rule(reruns, sign, default, min_pairs=2):  # version 1's minimum: two pairs
        return one_standard_error(reruns, sign, default, min_pairs)[:2]

    # minimising; pairs share a seed and a fold
    tuned = keyed([0.09, 0.11, 0.09, 0.11])
    noisy = keyed([0.05, 0.17, 0.05, 0.17])  # mean 0.11: 0.01 worse, but the difference varies
    chosen, error = rule({3: tuned, 0: noisy}, 1, 0)
    assert chosen == 0 and error == pytest.approx(np.std([0.04, -0.06] * 2, ddof=1) / 2)
    steady = keyed([0.12, 0.14, 0.12, 0.14])  # 0.03 worse on every pair: real evidence
    assert rule({3: tuned, 0: steady}, 1, 0) == (3, pytest.approx(0.0))
    assert rule({3: tuned}, 1, None)[0] == 3  # a study without its default
    # pairs are matched by (seed, fold), not by position: a lost seed drops its pairs
    lost = {key: value for key, value in noisy.items() if key[0] == 2}
    assert rule({3: tuned, 0: lost}, 1, 0)[0] == 0  # 2 pairs, same error
    assert rule({3: tuned, 0: {(1, 0): 0.1000001}}, 1, 0) == (3, pytest.approx(
        float("nan"), nan_ok=True))  # one pair: no error to measure, the best mean wins
    # maximising (accuracy): the same rule, mirrored
    assert rule({1: keyed([0.96, 0.98]), 0: keyed([0.97, 0.95])}, -1, 0)[0] == 0
    assert rule({1: keyed([0.96, 0.98]), 0: keyed([0.90, 0.91])}, -1, 0)[0] == 1
    # today's minimum is five pairs: with four the error is not trusted, the best mean wins
    # and the rule says so; with six, the defaults are kept as above
    chosen, error, why = one_standard_error({3: tuned, 0: noisy}, 1, 0)
    assert (chosen, why) == (3, "best mean of the re-runs: 4 paired values, fewer than the 5 "
                                "the one-standard-error rule needs") and np.isnan(error)
    six = {3: keyed([0.09, 0.11] * 3), 0: keyed([0.05, 0.17] * 3)}
    assert one_standard_error(six, 1, 0)[::2] == (0, "one standard error")


def searched(tmp_path: Path, **changes) -> SweepPlan:
    """A plan whose gru study holds three finished trials: the defaults (0.9), hidden 12
    (0.5, the best) and hidden 4 (0.6); selection re-runs the top one and the defaults."""
    plan = replace(speech_plan(tmp_path, folds=1), top=1, rerun_seeds=2, **changes)
    study = optuna.create_study(study_name=plan.study_name("gru"),
                                storage=open_storage(plan.storage))
    default = build_spec("speech", "gru", settings=SPEECH).settings()
    for value, settings, attrs in ((0.9, default, {"defaults": True}),
                                   (0.5, {**default, "hidden_size": 12}, {}),
                                   (0.6, {**default, "hidden_size": 4}, {})):
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={
            "settings": settings, **attrs}))
    studies.create(plan, "gru")  # its record (the trials are there: nothing is enqueued)
    return plan


def no_training(*args, **kwargs):
    raise AssertionError("a recorded re-run was trained again")


def test_selection_re_runs_the_default_beside_the_top_and_records_the_rule(tmp_path):
    plan = searched(tmp_path)
    chosen = choose(plan, "gru")
    selection = record_of(plan).selection
    assert set(selection.means) == {0, 1}  # the best trial and the default
    assert chosen == selection.chosen in (0, 1)
    # two seeds on one split are two pairs: too few for the one-standard-error rule, so
    # the best mean wins, and the record says why
    assert selection.standard_error is None and "fewer than the 5" in selection.rule
    assert sorted(p.name for p in Path(tmp_path, "selection").rglob("trial-*")) == [
        "trial-0000-rerun0", "trial-0000-rerun1", "trial-0001-rerun0", "trial-0001-rerun1"]


def test_a_diverged_final_is_recorded_reported_and_the_sweep_goes_on(tmp_path, monkeypatch,
                                                                     capsys):
    """A final that diverges is the chosen configuration failing on a fresh seed: recorded,
    named by the report, left out of the means, and never a sweep that cannot finish (it
    used to stop the sweep, and every later attempt read the same divergence back)."""
    from seqbench.model import DivergedError
    from seqbench.reports import tables
    from seqbench.reports.collect import collect
    from seqbench.sweeps.finals import final

    def diverges(*args, **kwargs):
        raise DivergedError("training loss became nan in epoch 7")

    plan = searched(tmp_path)
    monkeypatch.setattr("seqbench.sweeps.cache.train", diverges)
    final(plan, "gru", 0)
    (found,) = record_of(plan).finals
    assert found.metrics == {"status": "diverged", "error": "training loss became nan in epoch 7"}
    assert f"gru final seed {found.seed}: diverged (training loss became nan in epoch 7)" in \
        capsys.readouterr().err
    final(plan, "gru", 0)  # the sweep run again: the same record, nothing new to say
    assert record_of(plan).finals == (found,) and "final seed" not in capsys.readouterr().err
    (cell,) = next(iter(collect(plan.storage, plan.study).values()))
    assert cell.finals == [] and [f["seed"] for f in cell.diverged] == [found.seed]
    assert tables.diverged_line([cell]).startswith(
        f"Diverged finals: gru seed {found.seed} (training loss became nan in epoch 7).")


def test_each_re_run_is_its_own_job_so_a_one_cell_stage_keeps_every_worker_busy(
        tmp_path, monkeypatch):
    """With one job per cell, a one-cell stage ran its whole selection on one worker while
    the others idled; one job per (candidate, seed) spreads it over all of them, and the
    parent that selects reads every re-run back instead of training it."""
    plan = searched(tmp_path, jobs=2)
    jobs = rerun_jobs(plan)
    assert [job.name for job in jobs] == ["gru/trial1-rerun0", "gru/trial1-rerun1",
                                          "gru/trial0-rerun0", "gru/trial0-rerun1"]
    run_jobs(jobs, plan.jobs)
    monkeypatch.setattr("seqbench.train.train", no_training)
    chosen = choose(plan, "gru")
    selection = record_of(plan).selection
    assert chosen == selection.chosen in (0, 1)
    assert all(np.isfinite(value) for value in selection.means.values())
    assert rerun_jobs(replace(plan, rerun_seeds=0)) == []


def test_a_diverged_re_run_is_read_back_as_a_missing_seed_not_trained_again(
        tmp_path, monkeypatch, capsys):
    from seqbench import runs
    from seqbench.sweeps.cache import KEY

    plan = searched(tmp_path)
    (request,) = rerun_requests(plan, "gru", 0, 1, 0)
    request.run_dir.mkdir(parents=True)
    runs.write_config(request.run_dir, request.spec, {KEY: request.key()})
    (request.run_dir / "metrics.json").write_text(json.dumps(
        {"status": "diverged", "error": "val_nll is nan after epoch 2"}))
    monkeypatch.setattr("seqbench.train.train", no_training)
    assert rerun(plan, "gru", 0, 1, 0) is None
    assert "gru trial 1 re-run 0: diverged (val_nll is nan after epoch 2)" in \
        capsys.readouterr().err
