"""Sweep workers spread over the visible GPUs (`seqbench.sweeps.gpus`), tested without a
GPU: the device count and `CUDA_VISIBLE_DEVICES` are given, and the worker processes that
`run_jobs` really starts report the environment they were started with."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from seqbench.errors import SeqbenchError
from seqbench.sweeps.gpus import VISIBLE, slot_environment, visible_gpus
from seqbench.sweeps.workers import Job, run_jobs


@pytest.mark.parametrize("value, expected", [
    ("3,5", ["3", "5"]),
    (" 0 , 2", ["0", "2"]),
    ("GPU-8f2a,GPU-77c1", ["GPU-8f2a", "GPU-77c1"]),  # UUIDs, as SLURM may set them
    ("", []),  # hides every GPU
    ("1,-1,2", ["1"]),  # CUDA stops at the first invalid entry
    ("NoDevFiles", []),  # what some schedulers set when a job has no GPU
    ("none", []),
    ("MIG-4f1c", ["MIG-4f1c"]),
])
def test_visible_gpus_are_this_process_own_list_when_it_has_one(value, expected):
    asked = []
    assert visible_gpus({VISIBLE: value}, count=lambda: asked.append(1) or 8) == expected
    assert not asked  # torch is not asked when the variable says it


def test_visible_gpus_are_torchs_count_without_the_variable():
    assert visible_gpus({}, count=lambda: 4) == ["0", "1", "2", "3"]


def test_worker_slots_take_the_gpus_round_robin():
    placement = slot_environment("cuda", {}, count=lambda: 4)
    assert [placement(slot)[VISIBLE] for slot in range(8)] == list("01230123")
    restricted = slot_environment("auto", {VISIBLE: "5,7"}, count=lambda: 8)
    assert [restricted(slot) for slot in range(3)] == [{VISIBLE: g} for g in ("5", "7", "5")]


def test_no_placement_on_cpu_and_a_clear_error_for_cuda_without_a_gpu():
    assert slot_environment("cpu", {}, count=lambda: 4) is None
    assert slot_environment("auto", {}, count=lambda: 0) is None
    with pytest.raises(SeqbenchError, match=r"no CUDA device is visible \(CUDA_VISIBLE_DEVICES unset\)"):
        slot_environment("cuda", {}, count=lambda: 0)
    with pytest.raises(SeqbenchError, match=r"no CUDA device is visible \(CUDA_VISIBLE_DEVICES empty\)"):
        slot_environment("cuda", {VISIBLE: ""}, count=lambda: 4)
    with pytest.raises(SeqbenchError, match=r"\(CUDA_VISIBLE_DEVICES=NoDevFiles\)"):
        slot_environment("cuda", {VISIBLE: "NoDevFiles"}, count=lambda: 4)


def test_the_sweep_says_which_gpu_each_worker_gets(monkeypatch, capsys):
    from seqbench.sweeps.runner import worker_gpus

    monkeypatch.setenv(VISIBLE, "2,3")
    plan = dict(device="cuda", gpus_per_trial=1, settings={})
    placement = worker_gpus(SimpleNamespace(jobs=3, **plan))
    assert [placement(slot)[VISIBLE] for slot in range(3)] == ["2", "3", "2"]
    assert "round-robin: 2; 3; 2" in capsys.readouterr().err
    assert worker_gpus(SimpleNamespace(jobs=1, **plan)) is None  # runs in-process
    assert worker_gpus(SimpleNamespace(jobs=3, **{**plan, "device": "cpu"})) is None


def test_devices_per_run_above_one_gpu_per_worker_is_refused_with_the_option_to_use(
        monkeypatch):
    """`--set devices=2` with GPUs and several workers: each worker sees one GPU, so every
    run would fail; the sweep says so once, before it records anything."""
    from seqbench.sweeps.runner import worker_gpus

    monkeypatch.setenv(VISIBLE, "0,1")
    with pytest.raises(SeqbenchError, match="use --gpus-per-trial 2 instead"):
        worker_gpus(SimpleNamespace(jobs=2, device="cuda", gpus_per_trial=1,
                                    settings={"devices": "2"}))
    assert worker_gpus(SimpleNamespace(jobs=2, device="cuda", gpus_per_trial=2,
                                       settings={"devices": "2"}))(1) == {VISIBLE: "0,1"}


def test_mig_instances_are_not_grouped():
    with pytest.raises(SeqbenchError, match="cannot group MIG instances"):
        slot_environment("cuda", {VISIBLE: "MIG-a,MIG-b"}, per_trial=2)
    assert slot_environment("cuda", {VISIBLE: "MIG-a,MIG-b"})(1) == {VISIBLE: "MIG-b"}


def note_gpu(folder: str, name: str) -> None:
    """A worker job: write down the GPU it was started with, and when it ran."""
    started = time.time()
    time.sleep(0.5)
    Path(folder, f"{name}.json").write_text(json.dumps(
        {"gpu": os.environ.get(VISIBLE), "start": started, "end": time.time()}))


def test_worker_processes_start_with_their_slots_gpu_and_never_share_one(tmp_path,
                                                                         monkeypatch):
    """Four jobs, two at a time, on two (pretend) GPUs: each process sees one GPU, two jobs
    running at once never see the same one, and this process's environment is unchanged."""
    monkeypatch.setenv(VISIBLE, "3,5")
    placement = slot_environment("cuda")
    run_jobs([Job(f"job{i}", note_gpu, (str(tmp_path), f"job{i}")) for i in range(4)], 2,
             placement=placement)
    seen = [json.loads((tmp_path / f"job{i}.json").read_text()) for i in range(4)]
    assert {s["gpu"] for s in seen} == {"3", "5"}
    for a in seen:
        for b in seen:
            if a is not b and a["start"] < b["end"] and b["start"] < a["end"]:
                assert a["gpu"] != b["gpu"]
    assert os.environ[VISIBLE] == "3,5"


def test_a_trial_of_several_gpus_takes_a_group_and_a_remainder_stays_idle():
    pairs = slot_environment("cuda", {}, count=lambda: 5, per_trial=2)  # GPU 4 has no pair
    assert [pairs(slot)[VISIBLE] for slot in range(4)] == ["0,1", "2,3", "0,1", "2,3"]
    uuids = slot_environment("auto", {VISIBLE: "GPU-a,GPU-b,GPU-c"}, per_trial=3)
    assert uuids(1) == {VISIBLE: "GPU-a,GPU-b,GPU-c"}


def test_more_gpus_per_trial_than_visible_is_said_once():
    with pytest.raises(SeqbenchError, match=r"--gpus-per-trial 4 needs at least 4 visible "
                                            r"GPUs; this machine shows 2 \(CUDA_VISIBLE_DEVICES=0,1\)"):
        slot_environment("auto", {VISIBLE: "0,1"}, per_trial=4)
    with pytest.raises(SeqbenchError, match="needs at least 2 visible GPUs; this machine shows 0"):
        slot_environment("auto", {}, count=lambda: 0, per_trial=2)


def test_gpus_per_trial_sets_the_runs_devices_and_is_checked_where_the_plan_is_made():
    from seqbench.sweeps.plan import SweepPlan

    base = dict(task="music", dataset="jsb", cells=("lstm",), storage="s.journal")
    plan = SweepPlan(**base, gpus_per_trial=2, device="cuda")
    assert plan.settings["devices"] == "2"
    assert plan.spec("lstm").hparams["devices"] == 2
    assert "--gpus-per-trial 2" in plan.command() and "devices=" not in plan.command()
    assert SweepPlan(**base, gpus_per_trial=2, settings={"devices": 2}).settings["devices"] == "2"
    for wrong, message in [
            (dict(gpus_per_trial=2, device="cpu"), "--device cpu has none; for several CPU "
                                                   "processes per run use --set devices=N"),
            (dict(gpus_per_trial=2, settings={"devices": "4"}),
             "--gpus-per-trial 2 and --set devices=4 disagree"),
            (dict(gpus_per_trial=0), "--gpus-per-trial must be at least 1"),
            (dict(settings={"num_nodes": "2"}), "--set num_nodes must stay 1")]:
        with pytest.raises(SeqbenchError, match=message):
            SweepPlan(**base, **wrong)
    assert "devices" not in SweepPlan(**base).settings
    import numpy as np

    recorded = SweepPlan(**base, gpus_per_trial=np.int64(2), device="cuda").gpus_per_trial
    assert recorded == 2 and type(recorded) is int  # the study record holds plain data


def test_a_gpu_shortfall_is_said_before_the_sweep_records_its_study(tmp_path, monkeypatch):
    """A mistyped `--gpus-per-trial` must leave the study name usable: had the study been
    recorded with its settings first, the corrected command would be refused as "run with
    other options"."""
    from seqbench.sweeps.plan import SweepPlan
    from seqbench.sweeps.runner import run_sweep

    monkeypatch.setenv(VISIBLE, "0")
    journal = tmp_path / "sweeps.journal"
    plan = SweepPlan(task="music", dataset="jsb", cells=("lstm",), storage=str(journal),
                     jobs=2, gpus_per_trial=4, device="cuda", output_dir=str(tmp_path))
    with pytest.raises(SeqbenchError, match="--gpus-per-trial 4 needs at least 4 visible"):
        run_sweep(plan)
    assert not journal.exists() or not journal.read_bytes()
