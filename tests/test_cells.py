"""The built-in cells and the step-function helper honour the cell contract."""

import pytest
import torch
from torch import nn

from seqbench import registry
from seqbench.step import StepProtocolError, StepSequence, from_step

CELLS = ["lstm", "gru", "rnn"]


def build(name, input_size=5, hidden=7, layers=1, dropout=0.0, **extra):
    cell = registry.get_cell(name)
    params = {p.name: p.default for p in cell.params} | extra
    return cell.build(input_size, hidden, layers, dropout, **params)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("layers", [1, 3])
def test_output_shape_and_state_continue_the_sequence(name, layers):
    torch.manual_seed(0)
    module = build(name, layers=layers).eval()
    x = torch.randn(4, 10, 5)
    whole, _ = module(x)
    assert whole.shape == (4, 10, 7)
    first, state = module(x[:, :6])
    second, _ = module(x[:, 6:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)


@pytest.mark.parametrize("name", CELLS)
def test_gradients_reach_every_parameter(name):
    module = build(name, layers=2, dropout=0.2)
    y, _ = module(torch.randn(3, 5, 5))
    y.pow(2).sum().backward()
    missing = [n for n, p in module.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing


@pytest.mark.parametrize("name", CELLS)
def test_batch_elements_are_independent(name):
    module = build(name).eval()
    x = torch.randn(3, 6, 5)
    alone, _ = module(x[1:2])
    together, _ = module(x)
    torch.testing.assert_close(together[1:2], alone)


def test_lstm_forget_bias_sets_the_effective_forget_gate_bias():
    module = build("lstm", hidden=4, forget_bias=1.0)
    effective = module.bias_ih_l0 + module.bias_hh_l0
    torch.testing.assert_close(effective[4:8], torch.ones(4))


def test_rnn_nonlinearity_option_reaches_the_module():
    assert build("rnn", nonlinearity="relu").nonlinearity == "relu"


class ElmanStep(nn.Module):
    """h_t = tanh(W x_t + U h_{t-1} + b): the textbook step, for checking the helper."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.inp = nn.Linear(input_size, hidden_size)
        self.rec = nn.Linear(hidden_size, hidden_size)

    def initial_state(self, batch_size, device, dtype):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def forward(self, x_t, h):
        h = torch.tanh(self.inp(x_t) + self.rec(h))
        return h, h


def test_step_helper_matches_the_fused_rnn_with_the_same_weights():
    torch.manual_seed(0)
    stepped = StepSequence(ElmanStep, input_size=3, hidden_size=4, num_layers=2)
    fused = nn.RNN(3, 4, num_layers=2, batch_first=True)
    with torch.no_grad():
        for layer, step in enumerate(stepped.layers):
            getattr(fused, f"weight_ih_l{layer}").copy_(step.inp.weight)
            getattr(fused, f"bias_ih_l{layer}").copy_(step.inp.bias)
            getattr(fused, f"weight_hh_l{layer}").copy_(step.rec.weight)
            getattr(fused, f"bias_hh_l{layer}").zero_().add_(step.rec.bias)
    x = torch.randn(2, 5, 3)
    ours, state = stepped(x)
    theirs, h_n = fused(x)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(torch.stack(state), h_n)


def test_from_step_builds_a_cell_factory_with_extras():
    seen = {}

    def make(i, h, scale):
        seen["scale"] = scale
        return ElmanStep(i, h)

    module = from_step(make)(3, 4, 1, 0.0, scale=2.0)
    y, _ = module(torch.randn(2, 3, 3))
    assert y.shape == (2, 3, 4) and seen == {"scale": 2.0}


def test_from_step_validates_without_changing_the_seeded_initialisation():
    """The protocol check runs a step at build time; a seeded run must not notice it."""
    torch.manual_seed(0)
    direct = StepSequence(ElmanStep, input_size=3, hidden_size=4, num_layers=2)
    after_direct = torch.rand(3)
    torch.manual_seed(0)
    built = from_step(ElmanStep)(3, 4, 2, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(direct.state_dict().values(),
                                                 built.state_dict().values()))
    assert torch.equal(torch.rand(3), after_direct)


def test_from_step_names_the_broken_part_of_the_step_protocol():
    class Wide(ElmanStep):
        def forward(self, x_t, h):
            h, _ = super().forward(x_t, h)
            return torch.cat([h, h], -1), h

    with pytest.raises(StepProtocolError, match=r"returned h_t \(2, 8\) and state \(2, 4\), "
                                                r"expected h_t \(2, 4\)"):
        from_step(Wide)(3, 4, 1, 0.0)
    with pytest.raises(StepProtocolError, match="from_step needs a step class or factory"):
        from_step("ElmanStep")


#: The built-in GRU and RNN cells' CPU recurrence against PyTorch's own modules.
RECURRENCES = [("gru", nn.GRU, {}), ("rnn", nn.RNN, {"nonlinearity": "tanh"}),
               ("rnn", nn.RNN, {"nonlinearity": "relu"})]


@pytest.mark.parametrize(("name", "reference", "extra"), RECURRENCES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("layers", "batch_first"), [(1, True), (3, False)])
def test_the_cpu_recurrence_matches_pytorchs_module(name, reference, extra, dtype, layers,
                                                    batch_first):
    """Outputs, final states and every gradient (inputs, initial state, all weights) agree
    with nn.GRU / nn.RNN given the same weights, to float tolerance."""
    from seqbench_cells import recurrence

    torch.manual_seed(0)
    ours = getattr(recurrence, reference.__name__)(6, 9, num_layers=layers,
                                                   batch_first=batch_first, **extra).to(dtype)
    theirs = reference(6, 9, num_layers=layers, batch_first=batch_first, **extra).to(dtype)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(5, 11, 6, dtype=dtype)
    h0 = torch.randn(layers, 5 if batch_first else 11, 9, dtype=dtype)
    results = []
    for module in (ours, theirs):
        inputs, state = x.clone().requires_grad_(), h0.clone().requires_grad_()
        y, h_n = module(inputs, state)
        (y.sin().sum() + (h_n * h_n).sum()).backward()
        results.append([y, h_n, inputs.grad, state.grad,
                        *(p.grad for p in module.parameters())])
    for ours_value, their_value in zip(*results, strict=True):
        torch.testing.assert_close(ours_value, their_value)


@pytest.mark.parametrize("name", ["gru", "rnn"])
def test_the_cpu_recurrence_serves_the_built_in_cells_and_drops_out_as_pytorch_does(name):
    from seqbench_cells import recurrence

    module = build(name, layers=2, dropout=0.4)
    assert isinstance(module, (recurrence.GRU, recurrence.RNN))
    plain = (nn.GRU if name == "gru" else nn.RNN)(5, 7, num_layers=2, dropout=0.4,
                                                   batch_first=True)
    plain.load_state_dict(module.state_dict())
    x = torch.randn(3, 8, 5)
    torch.manual_seed(1)
    ours, _ = module(x)  # training mode: dropout between the layers draws its mask
    torch.manual_seed(1)
    theirs, _ = plain(x)
    torch.testing.assert_close(ours, theirs)


def test_pytorchs_own_forward_serves_what_the_recurrence_does_not():
    """Evaluation without autograd, autocast, half precision, unbatched input and
    bidirectional layers take nn.GRU's own path (as CUDA does), and still work."""
    from seqbench_cells.recurrence import GRU, _runs_here

    module, x = GRU(4, 6, batch_first=True), torch.randn(2, 5, 4)
    assert _runs_here(module, x)
    with torch.no_grad():
        assert not _runs_here(module, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not _runs_here(module, x)
    assert not _runs_here(module, x.to(torch.bfloat16))
    assert not _runs_here(module, x[0])
    assert module(x[0])[0].shape == (5, 6)
    both_ways = GRU(4, 6, batch_first=True, bidirectional=True)
    assert not _runs_here(both_ways, x)
    assert both_ways(x)[0].shape == (2, 5, 12)
