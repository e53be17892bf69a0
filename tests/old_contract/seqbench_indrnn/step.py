# file: src/seqbench_indrnn/step.py
import torch
from torch import nn


class IndRNNStep(nn.Module):
    def __init__(self, input_size, hidden_size, max_recurrent):
        super().__init__()
        self.hidden_size = hidden_size
        self.inp = nn.Linear(input_size, hidden_size)
        self.u = nn.Parameter(torch.empty(hidden_size).uniform_(0, max_recurrent))

    def initial_state(self, batch_size, device, dtype):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def forward(self, x_t, h):
        h = torch.relu(self.inp(x_t) + self.u * h)
        return h, h
