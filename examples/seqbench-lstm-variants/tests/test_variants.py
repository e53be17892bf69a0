"""The nine cells pass seqbench's conformance kit, follow Greff et al.'s equations, and each
variant really lacks (or couples, or adds) the part its name says."""

import json
import os
from pathlib import Path

import pytest
import torch

from seqbench import registry
from seqbench.cli import main
from seqbench.testing import parametrize_cell_checks
from seqbench_lstm_variants.steps import STEPS

VARIANTS = list(STEPS)
B, I, H = 3, 4, 5


@parametrize_cell_checks(*(f"lstm-{key}" for key in VARIANTS))
def test_cells_conform_to_the_seqbench_contract(check):
    check()


def test_the_plugins_are_discovered_from_this_distribution():
    found = registry.discover("cell")
    for key in VARIANTS:
        entry = found[f"lstm-{key}"]
        assert entry.error is None and entry.distribution == "seqbench-lstm-variants"


def reference(key, module, x):
    """The paper's equations written out plainly, with the variant's change by its name."""
    blocks = module.blocks
    W = dict(zip(blocks, module.input.weight.split(H)))
    b = dict(zip(blocks, module.input.bias.split(H)))
    R = dict(zip(blocks, module.recurrent.weight.split(H)))
    p = {gate: module.peephole[gate] if key != "np" and gate in blocks else 0.0
         for gate in "ifo"}
    y = c = torch.zeros(B, H)
    gates = torch.zeros(B, 3 * H)
    outputs = []
    for x_t in x.unbind(1):
        def pre(block):
            value = x_t @ W[block].T + y @ R[block].T + b[block]
            if key == "fgr" and block != "z":  # rows of the extra matrices: target i, f, o
                value = value + gates @ module.gate_recurrent.weight.split(H)["ifo".index(block)].T
            return value

        z = pre("z") if key == "niaf" else torch.tanh(pre("z"))
        i = torch.ones(B, H) if key == "nig" else torch.sigmoid(pre("i") + p["i"] * c)
        if key == "cifg":
            f = 1 - i
        else:
            f = torch.ones(B, H) if key == "nfg" else torch.sigmoid(pre("f") + p["f"] * c)
        c = z * i + c * f
        o = torch.ones(B, H) if key == "nog" else torch.sigmoid(pre("o") + p["o"] * c)
        y = o * (c if key == "noaf" else torch.tanh(c))
        gates = torch.cat([i, f, o], dim=-1)
        outputs.append(y)
    return torch.stack(outputs, dim=1)


def make(key, seed=0):
    torch.manual_seed(seed)
    return STEPS[key](I, H)


@pytest.mark.parametrize("key", VARIANTS)
def test_each_variant_computes_the_papers_equations(key):
    module = make(key)
    x = torch.randn(B, 7, I)
    state = module.initial_state(B, x.device, x.dtype)
    outputs = []
    with torch.no_grad():
        for x_t in x.unbind(1):
            y, state = module(x_t, state)
            outputs.append(y)
        torch.testing.assert_close(torch.stack(outputs, 1), reference(key, module, x))


def parameters(key):
    return sum(p.numel() for p in make(key).parameters())


@pytest.mark.parametrize("key, blocks, peepholes, extra", [
    ("vanilla", 4, 3, 0), ("nig", 3, 2, 0), ("nfg", 3, 2, 0), ("nog", 3, 2, 0),
    ("niaf", 4, 3, 0), ("noaf", 4, 3, 0), ("np", 4, 0, 0), ("cifg", 3, 2, 0),
    ("fgr", 4, 3, 9 * H * H),
])
def test_parameter_counts_are_the_variants_own(key, blocks, peepholes, extra):
    assert parameters(key) == blocks * (I + H + 1) * H + peepholes * H + extra


def one_step(key, seed=1, scale=1.0):
    """A module's activations on a random input and a random (nonzero) state."""
    module = make(key)
    generator = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(B, I, generator=generator)
    state = tuple(torch.randn(s.shape, generator=generator)
                  for s in module.initial_state(B, x.device, x.dtype))
    with torch.no_grad():
        return module, x, state, module.activations(x, state)


def test_nig_has_no_input_gate_the_block_input_enters_the_cell_whole():
    _, _, (_, c), a = one_step("nig")
    assert a["i"] is None
    torch.testing.assert_close(a["c"], a["z"] + a["f"] * c)  # i = 1


def test_nfg_forget_gate_is_constantly_one():
    _, _, (_, c), a = one_step("nfg")
    assert a["f"] is None
    torch.testing.assert_close(a["c"], a["i"] * a["z"] + c)  # f = 1: the cell never forgets


def test_nog_has_no_output_gate():
    _, _, _, a = one_step("nog")
    assert a["o"] is None
    torch.testing.assert_close(a["y"], torch.tanh(a["c"]))  # o = 1


def test_niaf_block_input_is_the_raw_linear_sum():
    module, x, (y, _), a = one_step("niaf", scale=20.0)
    linear = module.input(x)[:, :H] + module.recurrent(y)[:, :H]
    torch.testing.assert_close(a["z"], linear)
    assert a["z"].abs().max() > 1  # unbounded: no tanh squashes it


def test_noaf_output_is_the_gated_cell_itself():
    _, _, _, a = one_step("noaf", scale=20.0)
    torch.testing.assert_close(a["y"], a["o"] * a["c"])  # h = identity


@pytest.mark.parametrize("key, peeps", [("vanilla", True), ("np", False)])
def test_gates_see_the_cell_only_through_peepholes(key, peeps):
    module, x, (y, c), a = one_step(key)
    assert (len(module.peephole) > 0) == peeps
    with torch.no_grad():
        other = module.activations(x, (y, c + 1.0))
    for gate in "if":
        assert torch.equal(other[gate], a[gate]) != peeps


def test_cifg_forget_gate_is_one_minus_the_input_gate():
    module, *_, a = one_step("cifg")
    torch.testing.assert_close(a["f"], 1 - a["i"])
    assert module.blocks == ("z", "i", "o")  # no forget-gate weights


def test_fgr_gates_see_the_previous_gates_and_only_fgr_carries_them():
    module, x, (y, c, gates), a = one_step("fgr")
    with torch.no_grad():
        other = module.activations(x, (y, c, gates + 1.0))
    for gate in "ifo":
        assert not torch.equal(other[gate], a[gate])
    assert torch.equal(other["z"], a["z"])  # the block input has no gate recurrence
    assert len(make("vanilla").initial_state(B, "cpu", torch.float32)) == 2


def test_a_sweep_over_variants_on_jsb_chorales_runs(tmp_path, monkeypatch):
    """The smoke version of results/lstm-variants: one trial, one final seed, one epoch."""
    # The canonical data: SEQBENCH_DATA_DIR, else ../shared/data beside the repository.
    data = Path(os.environ.get("SEQBENCH_DATA_DIR")
                or Path(__file__).resolve().parents[4] / "shared" / "data")
    if not (data / "polyphonic-music" / "JSB Chorales.pickle").is_file():
        pytest.skip(f"JSB Chorales not found under {data}: set SEQBENCH_DATA_DIR")
    monkeypatch.setenv("SEQBENCH_COMPILE", "0")  # a few eager steps beat 30 s of compiling
    monkeypatch.setenv("SEQBENCH_CACHE_DIR", str(tmp_path / "cache"))
    cells = ["lstm-vanilla", "lstm-nfg"]
    code = main(["sweep", "--task", "music", "--dataset", "jsb", "--cells", ",".join(cells),
                 "--trials", "1", "--seeds", "1", "--rerun-seeds", "0", "--epochs", "1",
                 "--set", "hidden_size=8", "--data-dir", str(data),
                 "--output-dir", str(tmp_path / "sweeps")])
    assert code == 0
    for cell in cells:
        (metrics,) = (tmp_path / "sweeps" / "finals").glob(f"*/music-jsb/{cell}/seed*/metrics.json")
        record = json.loads(metrics.read_text())
        assert record["status"] == "completed" and record["split_sizes"]["train"] == 229
