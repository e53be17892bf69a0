"""Step cells: the compiled time loop agrees with the eager one and falls back cleanly, and a
cell's state in its own layout ([B, H, K] per layer) is carried by the core."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seqbench import Cell, step
from seqbench.config import build_spec
from seqbench.model import SequenceModel, carried_state
from seqbench.step import StepSequence, from_step
from seqbench.testing import check_cell

from seqbench_tasks.lm import task as lm_task
from seqbench_tasks.lm.corpus import SPLITS, Streams
from seqbench_tasks.lm.task import LanguageData

# torch.compile's internals still touch the deprecated TorchScript API; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*script_method.*:DeprecationWarning")


class TracesStep(nn.Module):
    """Each unit keeps K leaky traces with fixed decays; h_t is their mean. State [B, H, K]."""

    def __init__(self, input_size, hidden_size, decays=(0.0, 0.5, 0.9)):
        super().__init__()
        self.inp = nn.Linear(input_size, hidden_size)
        self.rec = nn.Linear(hidden_size, hidden_size)
        self.register_buffer("decays", torch.tensor(decays))

    def initial_state(self, batch_size, device, dtype):
        return torch.zeros(batch_size, self.rec.in_features, len(self.decays),
                           device=device, dtype=dtype)

    def forward(self, x_t, traces):
        drive = torch.tanh(self.inp(x_t) + self.rec(traces.mean(-1)))
        traces = self.decays * traces + (1 - self.decays) * drive.unsqueeze(-1)
        return traces.mean(-1), traces


TRACES = Cell("traces", "leaky traces, state [B, H, K]", from_step(TracesStep))


@pytest.fixture
def chunk(monkeypatch) -> int:
    """Compiled chunks of 4 steps instead of 16. What these tests assert (the compiled loop
    agrees with the eager one; each signature compiles once, whatever the widths, depths
    and batch sizes) does not depend on the chunk's length, and from a cold compile cache a
    quarter of the unrolled graph compiles in a fraction of the time (about 60 s a test on
    two cores at 16 steps)."""
    monkeypatch.setattr(step, "CHUNK", 4)
    return step.CHUNK


def test_compiled_and_eager_loops_agree_in_outputs_state_and_gradients(chunk):
    torch.manual_seed(0)
    eager = StepSequence(TracesStep, 3, 8, num_layers=2, compile_loop=False)
    compiled = StepSequence(TracesStep, 3, 8, num_layers=2, compile_loop=True)
    compiled.load_state_dict(eager.state_dict())
    x = torch.randn(4, 2 * chunk + 3, 3)  # two compiled chunks and an eager remainder
    start = tuple(torch.rand(4, 8, 3) for _ in range(2))
    results = []
    for module in (eager, compiled):
        y, state = module(x, start)
        (y.square().sum() + sum(s.sum() for s in state)).backward()
        results.append((y, state, [p.grad for p in module.parameters()]))
    (y0, state0, grads0), (y1, state1, grads1) = results
    torch.testing.assert_close(y1, y0)
    torch.testing.assert_close(state1, state0)
    torch.testing.assert_close(grads1, grads0)
    assert step.compile_report()["compiled"] >= 1


def test_a_loop_that_fails_to_compile_runs_eagerly_with_one_warning(monkeypatch, caplog, chunk):
    def broken(kind):
        def call(*args):
            raise RuntimeError("no C++ compiler")
        return call

    monkeypatch.setattr(step, "_compiled_steps", broken)
    monkeypatch.setattr(step, "_failed", set())
    torch.manual_seed(0)
    module = StepSequence(TracesStep, 3, 8, compile_loop=True)
    x = torch.randn(2, 2 * chunk, 3)
    with caplog.at_level(logging.WARNING, logger="seqbench.step"):
        y, _ = module(x)
        module(x)
    eager, _ = step.run_steps(module.layers[0], x, torch.zeros(2, 8, 3))
    torch.testing.assert_close(y, eager)
    assert [r.message for r in caplog.records] == [
        "could not compile the time loop of TracesStep (RuntimeError: no C++ compiler); "
        "running it eagerly"]
    assert step._failed == {TracesStep}


class PairStep(nn.Module):
    """An LSTM-like step whose initial state is one zero tensor twice, `(zeros, zeros)`."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.gates = nn.Linear(input_size + hidden_size, 2 * hidden_size)

    def initial_state(self, batch_size, device, dtype):
        zeros = torch.zeros(batch_size, self.gates.out_features // 2, device=device, dtype=dtype)
        return zeros, zeros

    def forward(self, x_t, state):
        h, c = state
        forget, drive = self.gates(torch.cat([x_t, h], dim=-1)).chunk(2, dim=-1)
        c = torch.sigmoid(forget) * c + torch.tanh(drive)
        return torch.tanh(c), (torch.tanh(c), c)


def test_a_sweep_of_new_widths_and_depths_compiles_each_signature_once(monkeypatch, chunk):
    """What a sweep worker does over many trials: new modules of other input and hidden
    widths and depths, a zero initial state with one tensor twice, a batch of one, training
    and evaluation. With torch.compile's recompile limit at 1, any recompilation of a
    signature would make this cell fall back to eager; none may."""
    monkeypatch.setattr(step, "_failed", set())
    with torch._dynamo.config.patch(recompile_limit=1):
        for input_size, hidden_size, layers in ((5, 8, 2), (7, 6, 1), (3, 11, 2)):
            module = StepSequence(PairStep, input_size, hidden_size, num_layers=layers,
                                  compile_loop=True)
            for batch_size in (4, 3, 1):
                y, _ = module(torch.randn(batch_size, chunk, input_size))
                y.sum().backward()
                with torch.no_grad():
                    module(torch.randn(batch_size, chunk, input_size))
    assert step._failed == set()
    signatures = [key for key in step._first_calls if key[0] is PairStep]
    assert len(signatures) == 3  # training layer 1, training layer 2, evaluation


@pytest.mark.compiles  # a run compiles its step cell's loop by default
def test_a_run_of_a_step_cell_records_what_compiling_cost(monkeypatch, tmp_path, chunk):
    import seqbench as sb

    monkeypatch.setattr(step, "_first_calls", {})  # nothing compiled yet in this process
    monkeypatch.setattr(step, "_failed", set())
    step._compiled_steps.cache_clear()
    run = sb.run(task="speech", cell=TRACES, epochs=1, hidden_size=4, output_dir=tmp_path,
                 progress=False)
    assert run.metrics["compile_seconds"] > 0
    assert run.metrics["compile_seconds"] == pytest.approx(
        sum(step._first_calls.values()), abs=1e-3)


def test_seqbench_compile_0_keeps_every_loop_eager(monkeypatch, chunk):
    def refuse(*args):
        raise AssertionError("compiled although SEQBENCH_COMPILE=0")

    monkeypatch.setattr(step, "_run_chunk", refuse)
    monkeypatch.setenv("SEQBENCH_COMPILE", "0")
    y, _ = StepSequence(TracesStep, 3, 8)(torch.randn(2, 2 * chunk, 3))
    assert y.shape == (2, 2 * chunk, 8)


def test_a_cell_with_state_b_h_k_passes_the_kit():
    results = check_cell(TRACES)
    assert "check_state_carried_by_core" in {r.check for r in results if r.outcome == "passed"}


def test_the_core_carries_state_only_to_a_batch_of_the_same_size():
    state = (torch.ones(3, 4, 2, requires_grad=True) * 2,)
    carried = carried_state((3, state), 3)
    assert torch.equal(carried[0], state[0]) and not carried[0].requires_grad
    assert carried_state((3, state), 2) is None and carried_state(None, 3) is None


def test_the_language_model_carries_a_b_h_k_state_across_windows():
    """Windows with the state carried score exactly as one pass over the stream (the state
    of this cell used to be dropped: its rank made the core read H as the batch size)."""
    ids = torch.arange(31) % 10
    streams = Streams({split: ids.numpy() for split in SPLITS},
                      [f"w{i}" for i in range(10)], "word")
    params = {"bptt": 3, "emb_size": 8, "tie_weights": False, "emb_dropout": 0.0,
              "out_dropout": 0.0, "init_range": 1.0}
    data = LanguageData("tiny", streams, params)
    spec = build_spec("lm", "gru", "ptb", {"hidden_size": 6, **params})
    torch.manual_seed(0)
    model = SequenceModel(lm_task, data, TRACES, spec).eval()
    model.on_validation_epoch_start()
    with torch.no_grad():
        for number, batch in enumerate(data.batches("valid", 4)):
            model.validation_step([(batch, True)], number)
        model.on_validation_epoch_end()
        one_pass = F.cross_entropy(model(ids[None, :-1])[0][0], ids[1:])
    assert model.last_metrics["val"]["val_nll"] == pytest.approx(float(one_pass), rel=1e-6)
