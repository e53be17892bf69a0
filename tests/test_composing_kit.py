"""The kit's checks for tasks that compose cells: the translation task passes them, and each
planted mistake of a composing task is caught by the check named for it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqbench.testing import CheckFailed, check_task
from seqbench_tasks.translation import task as translation
from seqbench_tasks.translation.data import TranslationData
from seqbench_tasks.translation.network import Translator


class PeekingTranslator(Translator):
    """Teacher forcing shifted the wrong way: the decoder reads target t to predict it."""

    def teacher_forced(self, targets, source):
        outputs, _ = self.decoder(self.decoder_inputs(targets, source))
        return self.logits(outputs, source)


class SpareStackTranslator(Translator):
    """Asks the factory for a third encoder stack and never runs it."""

    def __init__(self, cells, hidden_size, *args):
        super().__init__(cells, hidden_size, *args)
        self.spare = cells(4)


class NarrowDecoderTranslator(Translator):
    """Rebuilds its decoder (stack 3) for the embeddings alone but feeds it the source
    summary too."""

    def __init__(self, cells, hidden_size, source_vocab, target_vocab, emb_size, *args):
        super().__init__(cells, hidden_size, source_vocab, target_vocab, emb_size, *args)
        self.decoder = cells(emb_size)


class OwnCellTranslator(Translator):
    """Ignores the factory and builds fixed-size LSTMs of its own: compares no cell."""

    def __init__(self, cells, hidden_size, *args):
        super().__init__(lambda width: nn.LSTM(width, 8, batch_first=True), 8, *args)


def planted(network_class) -> TranslationData:
    """The task's check-case data, building `network_class` instead of the Translator."""
    data = translation.check_case().data

    class Planted(TranslationData):
        def network(self, cells, hidden_size, params):
            return network_class(cells, hidden_size, len(self.source_vocab),
                                 len(self.target_vocab), params["emb_size"],
                                 params["attention"], params["io_dropout"],
                                 params["length_penalty"])

    data.__class__ = Planted
    return data


def test_the_translation_task_passes_every_check_including_learning():
    outcomes = {r.check: r.outcome for r in check_task("translation", real_data=False,
                                                       learn=True)}
    assert outcomes["check_targets_unseen"] == outcomes["check_parameter_budget"] == "passed"
    assert outcomes["check_input_size"] == outcomes["check_learns"] == "passed"


def run_planted_network(network_class):
    """The kit (without real data) on the translation task building `network_class`."""
    return check_task(translation, data=planted(network_class), real_data=False)


#: (planted network, the check that must catch it, what its message says)
COMPOSING_BUGS = [
    (PeekingTranslator, "check_targets_unseen",
     "expected the outputs at target positions 0..0 unchanged when the targets from "
     "position 0 on change"),
    (SpareStackTranslator, "check_input_size", "expected forward() to read stack 3 (of 4 "
     "built), got never called"),
    (NarrowDecoderTranslator, "check_input_size", "expected stack 3 to be fed the width it "
     "was built for (256), got inputs of width 264"),
    (OwnCellTranslator, "check_input_size", "expected network() to build its recurrent "
     "stacks with the cell factory, got none built"),
    (OwnCellTranslator, "check_parameter_budget", "expected more parameters at "
     "hidden_size=16 than at 8"),
]


@pytest.mark.parametrize("network, check, message", COMPOSING_BUGS)
def test_each_planted_composing_bug_is_caught_by_its_check(network, check, message):
    with pytest.raises(CheckFailed) as failed:
        run_planted_network(network)
    lines = [line for line in str(failed.value).splitlines() if message in line]
    assert lines and check in lines[0], str(failed.value)


def test_the_bidirectional_example_of_the_contract_passes_the_kit():
    from test_composing import NextValue

    outcomes = {r.check: r.outcome for r in check_task(NextValue(), real_data=False)}
    assert outcomes["check_targets_unseen"] == outcomes["check_input_size"] == "passed"


def test_a_task_that_does_not_compose_cells_skips_the_composing_checks():
    results = {r.check: r for r in check_task("speech", real_data=False)}
    for name in ("check_targets_unseen", "check_parameter_budget"):
        assert results[name].outcome == "skipped"
        assert "does not compose cells" in results[name].message


def test_perturbed_targets_stay_valid_ids_and_differ_everywhere_from_the_start():
    from seqbench.testing.composing import changed_from

    targets = torch.tensor([[4, 5, 3, 0], [6, 3, 0, 0]])
    changed = changed_from(targets, 1)
    assert torch.equal(changed[:, :1], targets[:, :1])
    assert torch.all(changed[:, 1:] != targets[:, 1:])
    assert set(changed.unique().tolist()) <= set(targets.unique().tolist())
