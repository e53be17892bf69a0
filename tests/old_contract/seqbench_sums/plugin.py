# file: src/seqbench_sums/plugin.py
from seqbench import Param, Task


class SumsTask(Task):
    name = "sums"
    summary = "Sum of a sequence of uniform values, read at the last step; MSE"
    datasets = {"generated": "values uniform in [0, 1], one fixed seed per split"}
    default_dataset = "generated"
    primary_metric = "mse"
    direction = "minimize"
    params = (Param("length", int, 10, "steps per sequence", low=1, high=1000, tune=False),)
    defaults = {"epochs": 5, "hidden_size": 32}

    def prepare(self, dataset, context, params):
        from seqbench_sums.data import SumsData, generate

        return SumsData(generate(params["length"], {"train": 256, "valid": 64, "test": 64}))

    def check_case(self):
        import numpy as np
        import torch

        from seqbench import CheckCase
        from seqbench_sums.data import SumsData, generate

        test = np.zeros((3, 4, 1), dtype=np.float32)  # sums 0.5, 1.5, 2.0
        test[0, :2], test[1, :3], test[2, :4] = 0.25, 0.5, 0.5
        data = SumsData({**generate(4, {"train": 6, "valid": 3}), "test": test})
        # Answering 1.0: squared errors 0.25, 0.25, 1.0, MSE 0.5 (batches of 2 then 1).
        return CheckCase(data=data, predict=lambda batch: torch.ones(len(batch.targets)),
                         expected={"mse": 0.5}, batch_size=2)


task = SumsTask()
