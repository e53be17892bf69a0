"""The cells of the last few years, and three non-recurrent reference points (declarations).

minGRU, minLSTM, sLSTM, mLSTM, LRU and IndRNN are written here from their papers; the
causal TCN, the small causal Transformer and Mamba (through `mambapy`) fit the same
contract, so a comparison also says when a recurrent cell is the wrong tool. Each declares
its family, and every one builds a module whose `forward(x, state)` continues a sequence
from a state, so all four tasks can train them and generate with them. This module holds
declarations only: torch, and mambapy, are imported when a cell is built.
"""

from __future__ import annotations

import math

from seqbench import Cell, Param, SeqbenchError

HEADS = Param("heads", int, 4, "heads; the largest divisor of hidden_size up to this is used",
              choices=(1, 2, 4, 8), tune=False)
#: sLSTM heads may differ in size by one unit, so every width keeps this many heads.
SLSTM_HEADS = Param("heads", int, 4, "heads of the block-diagonal recurrence (sizes differ by "
                    "at most one unit)", choices=(1, 2, 4, 8), tune=False)


def _stack(make_layer, input_size: int, hidden_size: int, num_layers: int, dropout: float):
    """`num_layers` layers `make_layer(input_size, hidden_size)`, dropout between them."""
    from seqbench_cells.modern.stack import LayerStack

    return LayerStack([make_layer(input_size if i == 0 else hidden_size, hidden_size)
                       for i in range(num_layers)], dropout)


def _blocks(make_block, input_size: int, hidden_size: int, num_layers: int, norm=None,
            dropout: float = 0.0):
    """Residual blocks of the model width, after a linear projection of the input (the
    embedding of residual-stream models) and before an optional final normalisation."""
    from torch import nn

    from seqbench_cells.modern.stack import LayerStack

    return LayerStack([make_block() for _ in range(num_layers)], dropout,
                      projection=nn.Linear(input_size, hidden_size), norm=norm)


def build_mingru(input_size: int, hidden_size: int, num_layers: int, dropout: float):
    from seqbench_cells.modern.mingru import MinLayer

    return _stack(lambda i, h: MinLayer("gru", i, h), input_size, hidden_size, num_layers,
                  dropout)


def build_minlstm(input_size: int, hidden_size: int, num_layers: int, dropout: float):
    from seqbench_cells.modern.mingru import MinLayer

    return _stack(lambda i, h: MinLayer("lstm", i, h), input_size, hidden_size, num_layers,
                  dropout)


def build_slstm(input_size: int, hidden_size: int, num_layers: int, dropout: float, *,
                heads: int):
    from seqbench.step import from_step
    from seqbench_cells.modern.xlstm import SLSTMStep

    return from_step(SLSTMStep)(input_size, hidden_size, num_layers, dropout, heads=heads)


def build_mlstm(input_size: int, hidden_size: int, num_layers: int, dropout: float, *,
                heads: int):
    from seqbench_cells.modern.xlstm import MLSTMLayer

    return _stack(lambda i, h: MLSTMLayer(i, h, heads), input_size, hidden_size, num_layers,
                  dropout)


def build_lru(input_size: int, hidden_size: int, num_layers: int, dropout: float, *,
              r_min: float, r_max: float, max_phase: float):
    from seqbench_cells.modern.lru import LRUBlock

    if r_min >= r_max:
        raise SeqbenchError(f"cell 'lru': r_min={r_min} must be below r_max={r_max}.")
    return _blocks(lambda: LRUBlock(hidden_size, dropout, r_min, r_max, max_phase),
                   input_size, hidden_size, num_layers)


def build_indrnn(input_size: int, hidden_size: int, num_layers: int, dropout: float):
    from seqbench.step import from_step
    from seqbench_cells.modern.indrnn import IndRNNStep, clip_recurrent_weights

    module = from_step(IndRNNStep)(input_size, hidden_size, num_layers, dropout)
    module.register_forward_pre_hook(clip_recurrent_weights)
    return module


def build_tcn(input_size: int, hidden_size: int, num_layers: int, dropout: float, *,
              kernel_size: int, levels: int = 1):
    """`num_layers` x `levels` residual blocks, the dilation doubling at every block.

    `levels` is the TCN's own depth: a task searches the same few layers for every cell
    (speech: 1-2), which capped the TCN's receptive field below a 64-step digit (at most
    1 + 2 (8 - 1)(2^2 - 1) = 43 steps), while Bai et al. choose the depth that covers the
    sequence. The default 1 is the TCN of one block per layer (runs recorded before
    `levels` existed build the same model)."""
    from seqbench_cells.modern.stack import LayerStack
    from seqbench_cells.modern.tcn import TemporalBlock

    blocks = num_layers * levels
    return LayerStack(TemporalBlock(input_size if i == 0 else hidden_size, hidden_size,
                                    kernel_size, 2**i, dropout) for i in range(blocks))


def build_transformer(input_size: int, hidden_size: int, num_layers: int, dropout: float, *,
                      heads: int, window: int):
    from torch import nn

    from seqbench_cells.modern.transformer import TransformerBlock

    return _blocks(lambda: TransformerBlock(hidden_size, heads, window, dropout), input_size,
                   hidden_size, num_layers, norm=nn.LayerNorm(hidden_size))


def build_mamba(input_size: int, hidden_size: int, num_layers: int, dropout: float, *,
                d_state: int, expand: int, d_conv: int):
    try:
        from mambapy.mamba import MambaConfig, RMSNorm
    except ImportError:
        raise SeqbenchError("cell 'mamba' needs mambapy: pip install 'seqbench[modern]' "
                            "(or pip install mambapy).") from None
    from seqbench_cells.modern.mamba import MambaLayer

    config = MambaConfig(d_model=hidden_size, n_layers=num_layers, d_state=d_state,
                         expand_factor=expand, d_conv=d_conv)
    return _blocks(lambda: MambaLayer(config), input_size, hidden_size, num_layers,
                   norm=RMSNorm(hidden_size), dropout=dropout)


mingru = Cell(
    name="mingru",
    summary="minGRU (Feng et al. 2024): input-only gates, parallel log-space scan",
    build=build_mingru,
    family="linear-recurrent",
)
minlstm = Cell(
    name="minlstm",
    summary="minLSTM (Feng et al. 2024): normalised input-only gates, parallel log-space scan",
    build=build_minlstm,
    family="linear-recurrent",
)
slstm = Cell(
    name="slstm",
    summary="sLSTM (Beck et al. 2024, xLSTM): exponential gating, normaliser and stabiliser, "
            "block-diagonal recurrence",
    build=build_slstm,
    params=(SLSTM_HEADS,),
)
mlstm = Cell(
    name="mlstm",
    summary="mLSTM (Beck et al. 2024, xLSTM): matrix memory, exponential gating, parallel form "
            "for training",
    build=build_mlstm,
    params=(HEADS,),
    family="linear-recurrent",
)
lru = Cell(
    name="lru",
    summary="Linear Recurrent Unit (Orvieto et al. 2023): complex diagonal recurrence, "
            "parallel scan, Norm-LRU-GLU-skip blocks",
    build=build_lru,
    params=(
        Param("r_min", float, 0.9, "smallest |lambda| at initialisation (ring inner radius)",
              low=0.0, high=0.999, search=(0.0, 0.99)),
        Param("r_max", float, 0.999, "largest |lambda| at initialisation (ring outer radius)",
              low=0.001, high=1.0, tune=False),
        Param("max_phase", float, 2 * math.pi, "largest phase of lambda at initialisation",
              low=0.0, high=2 * math.pi, tune=False),
    ),
    family="linear-recurrent",
)
indrnn = Cell(
    name="indrnn",
    summary="IndRNN (Li et al. 2018): ReLU, one recurrent weight per unit, clipped to "
            "2^(1/T)",
    build=build_indrnn,
)
tcn = Cell(
    name="tcn",
    summary="Causal TCN (Bai et al. 2018), reference point: dilated causal convolutions, "
            "residual blocks",
    build=build_tcn,
    params=(Param("kernel_size", int, 3, "convolution width k (receptive field "
                  "1 + 2(k-1)(2^(layers x levels) - 1))", low=2, high=16, search=(2, 8)),
            Param("levels", int, 1, "residual blocks per layer, dilation doubling at each "
                  "(the TCN's own depth, so its field can cover the sequence)", low=1,
                  high=12, search=(1, 4))),
    family="convolution",
)
transformer = Cell(
    name="transformer",
    summary="Small causal Transformer, reference point: pre-LN, ALiBi, sliding-window "
            "KV cache as state",
    build=build_transformer,
    params=(HEADS, Param("window", int, 256, "positions each step attends to (itself "
                         "included); the cache holds window - 1", low=2, high=100_000,
                         tune=False)),
    family="attention",
)
mamba = Cell(
    name="mamba",
    summary="Mamba (Gu & Dao 2023) through mambapy, reference point: selective state-space "
            "blocks",
    build=build_mamba,
    params=(
        Param("d_state", int, 16, "SSM state size N per channel", low=1, high=256, tune=False),
        Param("expand", int, 2, "inner width = expand x hidden_size", low=1, high=8,
              tune=False),
        Param("d_conv", int, 4, "width of the short causal convolution", low=2, high=16,
              tune=False),
    ),
    family="state-space",
)
