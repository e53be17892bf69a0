"""Time-series forecasting with naive baselines in every table.

Datasets: airline passengers (offline default, 36-month test), ETTh1 (Informer's protocol,
standardised MSE/MAE) and your own CSV. Metrics: MSE, MAE, MAPE, sMAPE, MASE; the primary
metric is MASE for airline and MSE for ETTh1. Naive, seasonal-naive and linear baselines
are scored on the same test windows and reported beside the model.
"""

from seqbench_tasks.forecasting.task import ForecastingTask

task = ForecastingTask()

__all__ = ["ForecastingTask", "task"]
