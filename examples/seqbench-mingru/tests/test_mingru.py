"""minGRU / minLSTM pass seqbench's conformance kit, and the scan computes the recurrence."""

import pytest
import torch

from seqbench import registry
from seqbench.testing import parametrize_cell_checks
from seqbench_mingru.cells import MinLayer
from seqbench_mingru.scan import log_scan, sequential


@parametrize_cell_checks("mingru", "minlstm")
def test_cells_conform_to_the_seqbench_contract(check):
    check()


def test_the_plugins_are_discovered_from_this_distribution():
    for name in ("mingru", "minlstm"):
        entry = registry.discover("cell")[name]
        assert entry.error is None and entry.distribution == "seqbench-mingru"


@pytest.mark.parametrize("variant", ["gru", "lstm"])
@pytest.mark.parametrize("with_state", [False, True])
def test_the_parallel_scan_equals_the_step_by_step_recurrence(variant, with_state):
    torch.manual_seed(0)
    layer = MinLayer(variant, input_size=3, hidden_size=5).double()
    log_a, log_b = layer.log_coefficients(torch.randn(2, 300, 3, dtype=torch.float64))
    h0 = torch.rand(2, 5, dtype=torch.float64) if with_state else None
    torch.testing.assert_close(log_scan(log_a, log_b, h0), sequential(log_a, log_b, h0))


def definition(variant, projected):
    """(keep, write) gates of the paper's equations, computed plainly in ordinary space."""
    if variant == "gru":
        k, pre = projected.chunk(2, dim=-1)
        z = torch.sigmoid(k)
        keep, write = 1 - z, z
    else:
        k_f, k_i, pre = projected.chunk(3, dim=-1)
        f, i = torch.sigmoid(k_f), torch.sigmoid(k_i)
        keep, write = f / (f + i), i / (f + i)
    return keep, write, torch.where(pre >= 0, pre + 0.5, torch.sigmoid(pre))


@pytest.mark.parametrize("variant", ["gru", "lstm"])
def test_the_layers_match_the_papers_equations(variant):
    torch.manual_seed(0)
    layer = MinLayer(variant, input_size=3, hidden_size=4)
    x = torch.randn(2, 6, 3)
    keep, write, candidate = definition(variant, layer.linear(x))
    h, expected = torch.zeros(2, 4), []
    for t in range(6):
        h = keep[:, t] * h + write[:, t] * candidate[:, t]
        expected.append(h)
    torch.testing.assert_close(layer(x, None), torch.stack(expected, 1))
