"""The bugs of issue #39's author trials, planted in seqbench's own GRU, sLSTM and speech
task (`tests/heldout.py`): each is caught by the check named for it, with a message that
names the bug, in hosts the checks were not written against. The unplanted hosts pass."""

from __future__ import annotations

import pytest

from heldout import PlantedSpeech, heldout_cell
from seqbench.testing import check_cell, check_task
from test_planted_bugs import ELSEWHERE, failures, names_bug

#: (bug, the check that must catch it, what its message must say; " ... " a varying part)
HELDOUT_CELL_BUGS = [
    ("state leaks across batches", "check_fresh_state",
     "the same batch twice, another batch between, to give the same outputs"),
    ("init seeded from hash(str)", "check_init_follows_seed",
     "initialisation depends on the process (seeded from hash(str)"),
    ("learnable plain tensor", "check_no_hidden_tensors",
     "every trainable tensor (requires_grad) to be a registered parameter, got ... "
     "outside parameters()"),
    ("state detached at every step", "check_gradient_through_time",
     "got zero: the state is cut from the graph between steps"),
    ("num_layers ignored", "check_layers_respected", "num_layers is ignored"),
    ("dropout ignored", "check_dropout_respected", "dropout is ignored"),
    ("missing stabiliser", "check_finite_at_scale",
     "got non-finite values by step ... (an exponential without a stabiliser?)"),
    ("unused projection", "check_no_unused_parameters",
     "got none for layers.0.skip.weight (16 of 16 rows) ... a projection, or part of one, "
     "that nothing uses"),
    ("buffer updated in place", "check_buffers_unchanged",
     "not to update in place a buffer the computation uses"),
    ("non-causal normalisation", "check_causal",
     "to stay the same when only steps ... change (a causal cell)"),
    ("dropout active in eval mode", "check_eval_deterministic",
     "two forward passes in eval mode ... to give the same outputs"),
    ("input modified in place", "check_input_untouched", "got x modified in place"),
    ("module without batch_first", "check_batch_first",
     "the module reads dimension 0 as time (batch_first=False?)"),
]
HELDOUT_TASK_BUGS = [
    ("labels shifted by one item", "check_targets_follow_inputs",
     "each example's targets to stay with its inputs whatever the batch size and order"),
    ("accuracy declared lower-is-better", "check_metric_directions",
     "'accuracy', declared to minimize, ... the declared direction is the wrong way round"),
    ("NLL declared higher-is-better", "check_metric_directions",
     "'nll', declared to maximize, ... the declared direction is the wrong way round"),
    ("torch.manual_seed in prepare()", "check_rng_untouched",
     "prepare() to leave the global torch, numpy and random generators as they were, got "
     "torch's changed"),
    ("numpy's global RNG reseeded in batches()", "check_rng_untouched",
     "batches() to leave the global torch, numpy and random generators as they were, got "
     "numpy's changed"),
    ("split sorted by label", "check_label_sets",
     "expected every class of 'valid' to occur in 'train', got classes [8] only in 'valid': a "
     "split sorted by label?"),
    ("split drawn without a seed", "check_prepare_repeatable",
     "a split or sample drawn without a seed"),
    ("item_scores per batch", "check_item_scores", "not one value per item"),
    ("reads the last padded step", "check_padding_ignored",
     "changed: a prediction read from a padded step"),
    ("loss averaged over padding", "check_padding_ignored",
     "the loss averages over padded steps"),
    ("a task option the cache ignores", "check_options_matter",
     "read from an empty cache but not after the default's (cache warm): the cache key "
     "leaves the option out"),
    ("a shuffle that ignores the seed", "check_shuffle_follows_seed",
     "the shuffle ignores its seed"),
]


def run_heldout_cell(bug: str, check: str):
    skip = {} if check == "check_init_follows_seed" else ELSEWHERE
    return check_cell(heldout_cell(bug), skip=skip)


def run_heldout_task(bug: str, check: str):
    return check_task(PlantedSpeech(bug))


@pytest.mark.parametrize("host", ["gru", "slstm"])
def test_the_unplanted_host_cells_pass_every_check(host):
    results = {r.check: r.outcome for r in check_cell(heldout_cell(None, host))}
    assert results.pop("check_cuda") in ("passed", "skipped")  # skipped without a GPU
    assert results.pop("check_learns") == "skipped"  # learning: test_cells.py trains them
    assert "failed" not in results.values(), results


def test_the_unplanted_host_task_passes_every_check():
    results = {r.check: r.outcome for r in check_task(PlantedSpeech())}
    skipped = {check for check, outcome in results.items() if outcome == "skipped"}
    assert "check_learns" in skipped and "check_padding_ignored" not in skipped, results
    assert "failed" not in results.values(), results


@pytest.mark.parametrize(("bug", "check", "message"), HELDOUT_CELL_BUGS,
                         ids=[b for b, *_ in HELDOUT_CELL_BUGS])
def test_each_trial_cell_bug_in_a_built_in_cell_is_caught_by_its_check(bug, check, message):
    found = failures(lambda: run_heldout_cell(bug, check))
    assert check in found, found
    assert names_bug(message, found[check]), found[check]


@pytest.mark.parametrize(("bug", "check", "message"), HELDOUT_TASK_BUGS,
                         ids=[b for b, *_ in HELDOUT_TASK_BUGS])
def test_each_trial_task_bug_in_the_speech_task_is_caught_by_its_check(bug, check, message):
    found = failures(lambda: run_heldout_task(bug, check))
    assert check in found, found
    assert names_bug(message, found[check]), found[check]
