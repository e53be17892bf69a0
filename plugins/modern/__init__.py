"""The modern cells (minGRU, minLSTM, sLSTM, mLSTM, LRU, IndRNN) and three non-recurrent
reference points (TCN, Transformer, Mamba); their declarations are in `cells`, the torch
modules in one module per paper. See README.md in this folder."""
