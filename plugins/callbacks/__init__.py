"""Training callbacks: progress, sample grids, metrics log, checkpoints, TensorBoard, W&B."""

from ganforge import hookimpl
from ganforge_plugins.callbacks.checkpointing import Checkpointing
from ganforge_plugins.callbacks.metrics_log import MetricsLog
from ganforge_plugins.callbacks.progress import Progress
from ganforge_plugins.callbacks.samples import Samples
from ganforge_plugins.callbacks.tensorboard import TensorBoard
from ganforge_plugins.callbacks.wandb_log import WandB


@hookimpl
def register_callbacks(register):
    register("progress", Progress)
    register("metrics-log", MetricsLog)
    register("samples", Samples)
    register("checkpoint", Checkpointing)
    register("tensorboard", TensorBoard)
    register("wandb", WandB)
