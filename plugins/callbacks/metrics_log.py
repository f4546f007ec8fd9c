"""``metrics.jsonl``: one JSON object per logged step (losses, learning rates, throughput)."""

from __future__ import annotations

import json
import time
from typing import Any

from ganforge.safety import plain_file_name


class MetricsLog:
    """Append averaged losses, learning rates and throughput to RUN/metrics.jsonl at each log step."""

    def __init__(self, filename: str = "metrics.jsonl") -> None:
        self.filename = plain_file_name(filename, "metrics-log", own="metrics.jsonl")
        self._info: tuple[int, dict[str, str]] | None = None

    def on_train_start(self, trainer: Any) -> None:
        # After a resume, drop records past the checkpoint: those steps are about to rerun.
        path = trainer.run_dir / self.filename
        if trainer.is_main and path.is_file():
            kept = [
                line
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                if line.strip() and _step_of(line) <= trainer.step
            ]
            path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def on_log_info(self, trainer: Any, step: int, info: dict[str, str]) -> None:
        """Text to add to the next record of ``step`` (the eval callback's protocol name)."""
        self._info = (step, {str(k): str(v) for k, v in info.items()})

    def on_log(self, trainer: Any, step: int, scalars: dict[str, float]) -> None:
        if not trainer.is_main:
            return
        record: dict[str, Any] = {"step": step, "epoch": trainer.epoch, "time": round(time.time(), 3)}
        record.update({k: float(v) for k, v in scalars.items()})
        if self._info is not None and self._info[0] == step:
            record.update(self._info[1])
        self._info = None
        record.update({f"lr_{name}": lr for name, lr in trainer.engine.learning_rates().items()})
        record.update({k: round(v, 5) for k, v in trainer.throughput.items()})
        with open(trainer.run_dir / self.filename, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError, TypeError, OverflowError, RecursionError):
        return 0
