"""The modern cells (plugins/modern): the conformance kit, each paper's equations, parallel
forms equal to their step-by-step recurrences, and one tiny run on every built-in task.

Equations are pinned against references written plainly from the papers (unstabilised
exponential gating for the xLSTM cells, complex numbers for the LRU, zero-padded
convolutions for the TCN, full causal attention for the Transformer) or against the
library a cell wraps (mambapy), in float64 from non-zero states.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import seqbench as sb
from seqbench import registry
from seqbench.testing import check_step_equation, parametrize_cell_checks

from seqbench_cells.modern import indrnn, mingru, xlstm
from seqbench_cells.modern.stack import heads_for, set_parallel
from test_user_data import midi_folder, write_text

MODERN = {"mingru": "linear-recurrent", "minlstm": "linear-recurrent", "slstm": "recurrent",
          "mlstm": "linear-recurrent", "lru": "linear-recurrent", "indrnn": "recurrent",
          "tcn": "convolution", "transformer": "attention", "mamba": "state-space"}
PARALLEL = ["mingru", "minlstm", "mlstm", "lru", "mamba"]


def build(name, input_size=3, hidden=8, layers=2, seed=0, **extra):
    torch.manual_seed(seed)
    cell = registry.get_cell(name)
    params = {p.name: p.default for p in cell.params} | extra
    return cell.build(input_size, hidden, layers, 0.0, **params).double().eval()


@parametrize_cell_checks(*MODERN)
def test_modern_cells_conform_to_the_seqbench_contract(check):
    check()


def test_every_modern_cell_is_listed_with_its_family():
    found = registry.discover("cell")
    assert {name: found[name].plugin.family for name in MODERN} == MODERN
    assert all(found[name].distribution == "seqbench" for name in MODERN)
    assert {found[name].plugin.family for name in ("lstm", "gru", "rnn")} == {"recurrent"}


# ---- parallel forms against their recurrences ----------------------------------------------

@pytest.mark.parametrize("name", PARALLEL)
def test_the_parallel_form_equals_the_step_by_step_recurrence(name):
    """Same weights, same non-zero carried state, 300 steps: outputs, final states and the
    gradients of every weight agree. Weights a cell starts at zero (the mLSTM's gate
    weights) are made random first, so every gate depends on the input and the
    stabiliser's running max is not a constant."""
    module = build(name, input_size=3)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for weight in module.parameters():
            if not weight.any():
                weight.copy_(0.5 * torch.randn(weight.shape, generator=generator,
                                               dtype=weight.dtype))
    x = torch.randn(2, 300, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        start = module(torch.randn(2, 7, 3, dtype=torch.float64))[1]

    def run(parallel: bool):
        module.zero_grad()
        output, state = set_parallel(module, parallel)(x, start)
        output.square().mean().backward()
        return (output.detach(), torch.utils._pytree.tree_leaves(state),
                [weight.grad.clone() for weight in module.parameters()])

    parallel, parallel_state, parallel_grads = run(True)
    stepped, stepped_state, stepped_grads = run(False)
    torch.testing.assert_close(parallel, stepped)
    for got, want in zip(parallel_state, stepped_state, strict=True):
        torch.testing.assert_close(got.detach(), want.detach())
    for got, want in zip(parallel_grads, stepped_grads, strict=True):
        torch.testing.assert_close(got, want)


# ---- minGRU / minLSTM ----------------------------------------------------------------------

@pytest.mark.parametrize("name", [*MODERN, "lstm", "gru", "rnn"])
def test_every_cell_runs_forward_and_backward_under_bf16_autocast(name):
    """`--precision bf16-mixed` puts the cells' matrix products in bfloat16: each must still
    give finite outputs and gradients (torch.complex, for one, takes no bfloat16: the LRU
    failed here on its first step). CPU autocast stands in for a GPU's."""
    module = build(name).float().train()
    x = torch.randn(2, 12, 3, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output, _ = module(x)
        output.float().square().mean().backward()
    assert torch.isfinite(output).all()
    assert all(torch.isfinite(w.grad).all() for w in module.parameters() if w.grad is not None)


def test_the_log_space_scan_keeps_float32_precision_over_long_sequences():
    """4,096 float32 steps of gates in (e^-8, 1) against the float64 loop: in one piece the
    scan lost 0.17% of h's relative precision (|log A_t| x epsilon); in pieces of 256 steps
    it stays within 0.02%."""
    from seqbench_cells.modern.scan import log_scan, sequential

    generator = torch.Generator().manual_seed(0)
    log_a = -8 * torch.rand(2, 4096, 8, generator=generator, dtype=torch.float64)
    log_b = torch.randn(2, 4096, 8, generator=generator, dtype=torch.float64)
    h0 = 0.1 + torch.rand(2, 8, generator=generator, dtype=torch.float64)
    exact = sequential(log_a.exp(), log_b.exp(), h0)
    scanned = log_scan(log_a.float(), log_b.float(), h0.float()).double()
    assert ((scanned - exact).abs() / exact).max() < 2e-4


def min_definition(variant, projected):
    """(keep, write, candidate) of the paper's equations, computed plainly in ordinary space."""
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
def test_min_cells_match_the_papers_equations(variant):
    torch.manual_seed(0)
    layer = mingru.MinLayer(variant, input_size=3, hidden_size=4).double()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    keep, write, candidate = min_definition(variant, layer.linear(x))
    h = torch.rand(2, 4, dtype=torch.float64)
    got, _ = layer(x, h)
    expected = []
    for t in range(6):
        h = keep[:, t] * h + write[:, t] * candidate[:, t]
        expected.append(h)
    torch.testing.assert_close(got, torch.stack(expected, 1))


def test_min_gru_one_step_by_hand():
    """One unit, W_z = 0 (z = 1/2), W_h x = 1 (h~ = 1.5): h_1 = 0.5 * 0.2 + 0.5 * 1.5 = 0.85."""
    layer = mingru.MinLayer("gru", input_size=1, hidden_size=1).double()
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor([[0.0], [1.0]]))
        layer.linear.bias.zero_()
        h, _ = layer(torch.ones(1, 1, 1, dtype=torch.float64),
                     torch.full((1, 1), 0.2, dtype=torch.float64))
    assert float(h) == pytest.approx(0.85)


# ---- sLSTM and mLSTM: the stabiliser changes nothing -----------------------------------------

def gate_matrices(step):
    """The paper's per-gate recurrent matrices R_i, R_f, R_z, R_o `[H, H]`, block-diagonal
    over heads, from the step's per-head parameters."""
    return [torch.block_diag(*(weight[:, g * size : (g + 1) * size]
                               for weight, size in zip(step.recurrent, step.head_sizes)))
            for g in range(4)]


def test_slstm_equals_the_unstabilised_equations():
    """The paper's Eqs. 8-14 without the stabiliser (i = exp(i~), f = sigmoid(f~)): the same h,
    and the stabilised c, n times exp(m) are the unstabilised ones. Heads of 4 and 3 units."""
    torch.manual_seed(0)
    step = xlstm.SLSTMStep(3, 7, heads=2).double()
    assert step.head_sizes == [4, 3]
    R = gate_matrices(step)
    W = step.input.weight.split(7)
    b = step.input.bias.split(7)
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    state = step.initial_state(2, torch.device("cpu"), torch.float64)
    h = c = n = torch.zeros(2, 7, dtype=torch.float64)
    for t in range(9):
        i_pre, f_pre, z_pre, o_pre = (x[:, t] @ W[g].T + h @ R[g] + b[g] for g in range(4))
        c = torch.sigmoid(f_pre) * c + i_pre.exp() * torch.tanh(z_pre)
        n = torch.sigmoid(f_pre) * n + i_pre.exp()
        h = torch.sigmoid(o_pre) * c / n
        got, state = step(x[:, t], state)
        torch.testing.assert_close(got, h)
        torch.testing.assert_close(state[1] * state[3].exp(), c)
        torch.testing.assert_close(state[2] * state[3].exp(), n)


def test_slstm_step_against_its_stabilised_equation_from_any_state():
    def equation(step, x_t, state):
        h, c, n, m = state
        R = gate_matrices(step)
        W, b = step.input.weight.split(step.hidden_size), step.input.bias.split(step.hidden_size)
        i_pre, f_pre, z_pre, o_pre = (x_t @ W[g].T + h @ R[g] + b[g] for g in range(4))
        m_new = torch.maximum(F.logsigmoid(f_pre) + m, i_pre)
        i, f = (i_pre - m_new).exp(), (F.logsigmoid(f_pre) + m - m_new).exp()
        c, n = f * c + i * torch.tanh(z_pre), f * n + i
        h = torch.sigmoid(o_pre) * c / n
        return h, (h, c, n, m_new)

    check_step_equation(xlstm.SLSTMStep, equation, hidden_size=7, params={"heads": 3})


def test_mlstm_equals_the_unstabilised_matrix_memory(monkeypatch):
    """C_t = f C + i v k^T, n_t = f n + i k, h = o * C q / max(|n^T q|, 1) (Eqs. 19-27)."""
    monkeypatch.setattr(xlstm, "EPS", 0.0)  # the authors' guard against 0/0, not the paper's
    torch.manual_seed(0)
    layer = xlstm.MLSTMLayer(3, 8, heads=2).double()
    with torch.no_grad():
        layer.gates.weight.normal_()  # input-dependent gates, unlike at initialisation
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    q, k, v, i_pre, log_f = layer.project(x)
    C = torch.zeros(2, 2, 4, 4, dtype=torch.float64)
    n = torch.zeros(2, 2, 4, dtype=torch.float64)
    expected = []
    for t in range(12):
        f, i = log_f[..., t].exp()[..., None], i_pre[..., t].exp()[..., None]
        C = f[..., None] * C + i[..., None] * (v[:, :, t, :, None] * k[:, :, t, None, :])
        n = f * n + i * k[:, :, t]
        qt = q[:, :, t]
        denominator = (n * qt).sum(-1, keepdim=True).abs().clamp_min(1.0)
        expected.append((C @ qt[..., None]).squeeze(-1) / denominator)
    h_tilde = torch.stack(expected, 2).transpose(1, 2).reshape(2, 12, 8)
    expected_h = torch.sigmoid(layer.output_gate(x)) * h_tilde
    initial = layer.initial_state(2, torch.device("cpu"), torch.float64)
    for parallel in (True, False):
        layer.parallel = parallel
        got, (C_got, n_got, m_got) = layer(x, initial)
        torch.testing.assert_close(got, expected_h)
        torch.testing.assert_close(C_got * m_got.exp()[..., None, None], C)
        torch.testing.assert_close(n_got * m_got.exp()[..., None], n)


# ---- LRU ------------------------------------------------------------------------------------

def test_lru_follows_the_complex_recurrence_and_its_initialisation():
    from seqbench_cells.modern.lru import LRU

    torch.manual_seed(0)
    lru = LRU(size=3, state_size=5, r_min=0.4, r_max=0.9, max_phase=math.pi).double()
    lam = lru.lambdas().detach().numpy()
    assert np.all((np.abs(lam) >= 0.4) & (np.abs(lam) <= 0.9))
    assert np.all((np.angle(lam) >= 0) & (np.angle(lam) <= math.pi))
    gamma = np.exp(lru.gamma_log.detach().numpy())
    np.testing.assert_allclose(gamma, np.sqrt(1 - np.abs(lam) ** 2))  # gamma normalisation
    B = (lru.B[0] + 1j * lru.B[1]).detach().numpy() * gamma[:, None]
    C = (lru.C[0] + 1j * lru.C[1]).detach().numpy()
    D = lru.D.detach().numpy()
    u = np.random.default_rng(0).standard_normal((1, 20, 3))
    x = np.array([0.3 - 0.1j, 0.2j, -0.5, 0.1 + 0.1j, 0.0])  # a carried state
    expected = []
    for t in range(20):
        x = lam * x + B @ u[0, t]
        expected.append((C @ x).real + D * u[0, t])
    state = torch.view_as_real(torch.tensor([[0.3 - 0.1j, 0.2j, -0.5, 0.1 + 0.1j, 0.0]]))
    y, final = lru(torch.from_numpy(u), state.double())
    np.testing.assert_allclose(y.detach().numpy()[0], np.array(expected), atol=1e-12)
    np.testing.assert_allclose(torch.view_as_complex(final).detach().numpy()[0], x, atol=1e-12)


# ---- IndRNN ---------------------------------------------------------------------------------

def test_indrnn_step_is_relu_of_input_plus_its_own_past():
    check_step_equation(indrnn.IndRNNStep, lambda step, x_t, h: (
        (h := torch.relu(step.input(x_t) + step.recurrent * h)), h))


def test_indrnn_clips_recurrent_weights_to_two_to_the_one_over_t():
    module = build("indrnn", layers=1).train()
    layer = module.layers[0]
    with torch.no_grad():
        layer.recurrent.copy_(torch.tensor([1.5, -1.5, 0.5, 1.0, 1.01, -2.0, 0.0, 1.2]))
    module(torch.randn(2, 10, 3, dtype=torch.float64))
    bound = 2 ** (1 / 10)
    expected = [bound, -bound, 0.5, 1.0, 1.01, -bound, 0.0, bound]
    torch.testing.assert_close(layer.recurrent.detach(), torch.tensor(expected).double())
    with torch.no_grad():  # an update beyond the bound; evaluation clips to the trained bound
        layer.recurrent[0] = 3.0
    module.eval()(torch.randn(2, 1, 3, dtype=torch.float64))
    assert float(layer.recurrent.detach()[0]) == pytest.approx(bound)
    assert float(module.state_dict()["layers.0.recurrent_bound"]) == pytest.approx(bound)


# ---- TCN ------------------------------------------------------------------------------------

def test_tcn_equals_zero_padded_dilated_convolutions_and_streams_exactly():
    """Bai et al.'s block written as their code does (pad both sides, chop the future), and
    the same sequence fed one step at a time through the carried state."""
    module = build("tcn", input_size=3, hidden=4, layers=2, kernel_size=3)
    x = torch.randn(2, 11, 3, dtype=torch.float64)
    h = x.transpose(1, 2)
    for block in module.layers:
        d = block.conv1.dilation[0]
        pad = 2 * d

        def conv(conv_module, z, pad=pad):
            return conv_module(F.pad(z, (pad, pad)))[:, :, :-pad]

        y = F.relu(conv(block.conv2, F.relu(conv(block.conv1, h))))
        h = F.relu(y + block.residual(h))
    whole, _ = module(x)
    torch.testing.assert_close(whole, h.transpose(1, 2))
    state, pieces = None, []
    for t in range(11):
        y, state = module(x[:, t : t + 1], state)
        pieces.append(y)
    torch.testing.assert_close(torch.cat(pieces, 1), whole)


def test_tcn_levels_deepen_each_layer_so_the_field_can_cover_a_64_step_digit():
    """With the one or two layers a task searches for every cell, `levels` is what lets the
    TCN's receptive field reach the sequence: the first output the last input changes is
    within the field, and an input just outside it changes nothing."""
    module = build("tcn", input_size=1, hidden=4, layers=1, kernel_size=3, levels=4)
    assert [block.conv1.dilation[0] for block in module.layers] == [1, 2, 4, 8]
    with torch.no_grad():  # positive weights and inputs: no ReLU hides a dependency
        for parameter in module.parameters():
            parameter.abs_()
    field = 1 + 2 * (3 - 1) * (2**4 - 1)  # 61 steps
    x = torch.rand(1, field + 1, 1, dtype=torch.float64)
    moved = x.clone()
    moved[0, 0] += 1.0  # one step older than the field of the last output
    assert torch.equal(module(x)[0][0, -1], module(moved)[0][0, -1])
    moved = x.clone()
    moved[0, 1] += 1.0  # the oldest step inside it
    assert not torch.equal(module(x)[0][0, -1], module(moved)[0][0, -1])
    assert len(build("tcn", layers=2, kernel_size=3).layers) == 2  # default: a block a layer


# ---- Transformer ----------------------------------------------------------------------------

def plain_attention(attention, x):
    """Causal softmax attention with ALiBi, every head written out (no cache, no window)."""
    q, k, v = attention.qkv(x).chunk(3, dim=-1)
    heads, steps = attention.heads, x.shape[1]
    size = x.shape[-1] // heads
    outputs = []
    for head in range(heads):
        part = slice(head * size, (head + 1) * size)
        slope = 2 ** (-8 * (head + 1) / heads)
        scores = q[..., part] @ k[..., part].transpose(1, 2) / math.sqrt(size)
        distance = torch.arange(steps)[:, None] - torch.arange(steps)[None, :]
        scores = scores - slope * distance
        scores = scores.masked_fill(distance < 0, -math.inf)
        outputs.append(torch.softmax(scores, -1) @ v[..., part])
    return attention.out(torch.cat(outputs, -1))


def test_transformer_is_causal_alibi_attention_and_its_cache_continues_it():
    module = build("transformer", input_size=3, hidden=8, layers=1, heads=2, window=64)
    block = module.layers[0]
    x = torch.randn(2, 10, 3, dtype=torch.float64)
    e = module.projection(x)
    e = e + plain_attention(block.attention, block.attention_norm(e))
    expected = module.norm(e + block.mlp(block.mlp_norm(e)))
    whole, _ = module(x)
    torch.testing.assert_close(whole, expected)
    state, pieces = None, []
    for t in range(10):
        y, state = module(x[:, t : t + 1], state)
        pieces.append(y)
    torch.testing.assert_close(torch.cat(pieces, 1), whole)


def test_transformer_window_bounds_what_a_step_sees():
    module = build("transformer", input_size=3, hidden=8, layers=1, window=3)
    x = torch.randn(1, 8, 3, dtype=torch.float64)
    changed = x.clone()
    changed[0, 4] += 1.0  # position 4 is seen by positions 4, 5 and 6 only
    y, y_changed = module(x)[0], module(changed)[0]
    differs = (y - y_changed).abs().amax(-1)[0] > 1e-12
    assert differs.tolist() == [False] * 4 + [True] * 3 + [False]


def test_transformer_stream_longer_than_its_window_continues_in_pieces_and_steps():
    """20 steps through a window of 4, two layers: the cache drops old positions as the
    stream moves on, and chunks of 3 or single steps give the whole sequence's outputs."""
    module = build("transformer", input_size=3, hidden=8, layers=2, heads=2, window=4)
    x = torch.randn(2, 20, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    whole, _ = module(x)
    for size in (3, 1):
        state, pieces = None, []
        for start in range(0, 20, size):
            y, state = module(x[:, start : start + size], state)
            pieces.append(y)
        torch.testing.assert_close(torch.cat(pieces, 1), whole)


# ---- Mamba ----------------------------------------------------------------------------------

def test_mamba_equals_mambapys_forward_and_step():
    module = build("mamba", input_size=3, hidden=8, layers=1)
    layer = module.layers[0]
    x = torch.randn(2, 10, 8, dtype=torch.float64)
    initial = layer.initial_state(2, torch.device("cpu"), torch.float64)
    torch.testing.assert_close(layer(x, initial)[0], layer.block(x))  # mambapy's forward
    cache, steps = initial, []
    for t in range(10):
        y, cache = layer.block.step(x[:, t], cache)  # mambapy's own one-token path
        steps.append(y)
    got, (h, past) = layer(x, initial)
    torch.testing.assert_close(got, torch.stack(steps, 1))
    torch.testing.assert_close(h, cache[0])
    torch.testing.assert_close(past, cache[1])


# ---- reports group and label by family --------------------------------------------------

def test_a_report_of_several_families_groups_and_labels_them(tmp_path):
    """The family comes from the study's record (a cell not installed here keeps it), else
    from the installed plugin (studies from before families were recorded)."""
    from seqbench.reports import write_reports
    from test_reports import fake_sweep, read_csv, wrong_on

    def recorded(family):
        return {"plugins": {"cell": {"name": "x", "distribution": "y", "version": "1",
                                     "family": family}}}

    finals = {name: {10: wrong_on(wrong), 11: wrong_on(wrong)}
              for name, wrong in (("attn", 2), ("lstm", 3), ("conv", 4), ("ghost", 5))}
    storage = fake_sweep(tmp_path, finals, kind="binary", weights=[1.0] * 20,
                         primary="accuracy", direction="maximize",
                         extra_attrs={"attn": recorded("attention"),
                                      "conv": recorded("convolution")})
    (folder,) = write_reports(storage, tmp_path / "report")
    rows = read_csv(folder / "table.csv")
    assert [(r["cell"], r["family"]) for r in rows[:4]] == [
        ("lstm", "recurrent"), ("conv", "convolution"), ("attn", "attention"),
        ("ghost", "unknown")]
    table = (folder / "table.md").read_text()
    labels = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| **")]
    assert labels == ["| **lstm (recurrent)**", "| **conv (convolution)**",
                      "| **attn (attention)**", "| **ghost (unknown)**"]  # none beaten


# ---- heads, the parameter budget, and a tiny run on every task -------------------------------

def test_heads_divide_the_width():
    assert [heads_for(h, 4) for h in (16, 18, 37, 3, 50)] == [4, 3, 1, 3, 2]


def test_every_modern_cell_trains_and_generates_on_every_built_in_task(tmp_path):
    """One epoch of a width-8 model per cell and task, then the task's generate; and the
    --param-budget route finds each cell's width (on the meta device, as sweeps do)."""
    from seqbench.config import build_spec
    from seqbench.sweeps.budget import hidden_size_for

    corpus = write_text(tmp_path / "corpus.txt", lines=60)
    tasks = {
        "music": dict(dataset="midi", path=str(midi_folder(tmp_path / "midi")),
                      steps_per_beat=2),
        "lm": dict(dataset="text", path=str(corpus), bptt=8, emb_size=8, batch_size=4,
                   optimizer="adam", lr=0.01),
        "speech": dict(dataset="japanese-vowels"),
        "forecasting": dict(dataset="airline"),
    }
    generated = {"music": ("sample-1.mid", {"steps": 6}), "lm": ("sample-1.txt", {"steps": 6}),
                 "speech": ("predictions.csv", {}), "forecasting": ("forecast.csv", {})}
    for cell in MODERN:
        for task, settings in tasks.items():
            run = sb.run(task=task, cell=cell, epochs=1, hidden_size=8, progress=False,
                         output_dir=tmp_path / cell, **settings)
            assert run.metrics["status"] == "completed", (cell, task)
            assert all(np.isfinite(v) for k, v in run.metrics.items()
                       if k.startswith("test_") and isinstance(v, float)), (cell, task)
            name, options = generated[task]
            files = run.generate(tmp_path / "out" / cell / task, **options)
            assert name in [path.name for path in files], (cell, task)
        width = hidden_size_for(build_spec("forecasting", cell, device="cpu"), run.data, 20_000)
        assert 8 < width < 20_000, cell


def test_every_modern_cell_transcribes_and_translates(tmp_path):
    """The two tasks beyond encoder -> cell -> head take every modern cell too, as the
    standard suite does: ASR (CTC over per-frame outputs, bidirectional as two stacks, one
    reading time reversed) and translation (a bidirectional encoder and a decoder fed one
    token at a time, so a cell's step must agree with its sequence form)."""
    from test_asr_task import recordings_folder
    from test_translation_task import write_pairs

    recordings = recordings_folder(tmp_path / "wav")
    source, target = write_pairs(tmp_path, 60)
    sentences = tmp_path / "in.de"
    sentences.write_text("eins zwei.\n")
    for cell in MODERN:
        heard = sb.run(task="asr", cell=cell, dataset="wav", epochs=1, hidden_size=8,
                       batch_size=4, output_dir=tmp_path / cell, progress=False,
                       path=str(recordings), bidirectional=True)
        read = sb.run(task="translation", cell=cell, dataset="parallel", epochs=1,
                      hidden_size=8, output_dir=tmp_path / cell, progress=False,
                      source=str(source), target=str(target), bpe_vocab=60, emb_size=8)
        for run in (heard, read):
            assert run.metrics["status"] == "completed", (cell, run.task)
            assert all(np.isfinite(v) for k, v in run.metrics.items()
                       if k.startswith("test_") and isinstance(v, float)), (cell, run.task)
        assert [p.name for p in heard.generate(tmp_path / "out" / cell)] == ["transcripts.csv"]
        translated = read.generate(tmp_path / "tr" / cell, input=str(sentences))
        assert len(translated[0].read_text().splitlines()) == 1, cell
