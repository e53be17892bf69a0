"""Greff et al. 2017's LSTM variants for seqbench, each a step cell (`seqbench.step`).

Only seqbench's public API is used: a `Cell` declares each plugin and `from_step` turns the
variant's step module into the stacked sequence module the core expects (its time loop
compiled by seqbench). Torch is imported when a cell is built, not when `seqbench list`
discovers the plugins.
"""

from seqbench import Cell


def _cell(key: str, summary: str) -> Cell:
    def build(input_size: int, hidden_size: int, num_layers: int, dropout: float):
        from seqbench.step import from_step
        from seqbench_lstm_variants.steps import STEPS

        return from_step(STEPS[key])(input_size, hidden_size, num_layers, dropout)

    return Cell(name=f"lstm-{key}", summary=f"{summary} (Greff et al. 2017)", build=build)


vanilla = _cell("vanilla", "Vanilla LSTM with peepholes")
nig = _cell("nig", "LSTM without input gate")
nfg = _cell("nfg", "LSTM without forget gate")
nog = _cell("nog", "LSTM without output gate")
niaf = _cell("niaf", "LSTM without input activation function")
noaf = _cell("noaf", "LSTM without output activation function")
np = _cell("np", "LSTM without peepholes")
cifg = _cell("cifg", "LSTM with coupled input and forget gate")
fgr = _cell("fgr", "LSTM with full gate recurrence")
