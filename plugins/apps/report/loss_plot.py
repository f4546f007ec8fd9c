"""Loss curves as a PNG (RUN/loss_curves.png), drawn with Pillow: no plotting dependency."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

from PIL import Image, ImageDraw, ImageFont

from ganforge import Range
from ganforge.api import read_records
from ganforge.safety import atomic_write, plain_file_name

from .report import PALETTE, axis_range, nice_ticks


def line_chart(
    series: dict[str, list[tuple[float, float]]],
    title: str = "",
    x_label: str = "step",
    size: tuple[int, int] = (900, 420),
) -> Image.Image:
    """A line chart of named (x, y) series with axes, ticks and a legend."""
    width, height = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    left, right, top, bottom = 64, 150, 30, 40
    pw, ph = width - left - right, height - top - bottom
    points = [(x, y) for pts in series.values() for x, y in pts if math.isfinite(y)]
    if title:
        draw.text((left, 8), title, fill="black", font=font)
    draw.rectangle([left, top, left + pw, top + ph], outline="#444444")
    if not points:
        draw.text((left + 10, top + 10), "no data yet", fill="#666666", font=font)
        return img
    x0, x1, y0, y1 = axis_range(points)

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + ph - (y - y0) / (y1 - y0) * ph

    for t in nice_ticks(y0, y1):
        draw.line([left, sy(t), left + pw, sy(t)], fill="#e5e5e5")
        draw.text((4, sy(t) - 6), f"{t:.3g}", fill="black", font=font)
    for t in nice_ticks(x0, x1):
        draw.line([sx(t), top + ph, sx(t), top + ph + 4], fill="#444444")
        draw.text((sx(t) - 10, top + ph + 8), f"{t:g}", fill="black", font=font)
    draw.text((left + pw // 2 - 10, height - 16), x_label, fill="black", font=font)
    for i, (name, pts) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        xy = [(sx(x), sy(y)) for x, y in pts if math.isfinite(y)]
        if len(xy) == 1:
            draw.ellipse([xy[0][0] - 2, xy[0][1] - 2, xy[0][0] + 2, xy[0][1] + 2], fill=color)
        elif xy:
            draw.line(xy, fill=color, width=2)
        ly = top + 6 + 16 * i
        draw.line([left + pw + 12, ly + 6, left + pw + 32, ly + 6], fill=color, width=3)
        draw.text((left + pw + 38, ly), name, fill="black", font=font)
    return img


NON_LOSS_KEYS = {"step", "epoch", "time", "steps_per_s", "samples_per_s", "data_wait_share"}


def loss_series(records: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """Loss names -> (step, value) from metrics records (learning rates and throughput left out)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        for k, v in r.items():
            if (
                k in NON_LOSS_KEYS
                or k.startswith("lr_")
                or k.startswith("eval/")
                or not isinstance(v, int | float)
            ):
                continue
            series.setdefault(k, []).append((float(r["step"]), float(v)))
    return series


class LossPlot:
    """Plot the logged D and G losses over training to RUN/loss_curves.png (every ``every`` logs)."""

    def __init__(self, every: Annotated[int, Range(0)] = 10, filename: str = "loss_curves.png") -> None:
        self.every, self.filename = every, plain_file_name(filename, "loss-plot")
        self._logs = 0

    def write(self, trainer: Any) -> Path:
        chart = line_chart(
            loss_series(read_records(trainer.run_dir / "metrics.jsonl")), title="training losses"
        )
        path = trainer.run_dir / self.filename
        atomic_write(path, lambda tmp: chart.save(tmp, format="PNG"))
        return path

    def on_log(self, trainer: Any, step: int, scalars: dict[str, float]) -> None:
        self._logs += 1
        if trainer.is_main and self.every > 0 and self._logs % self.every == 0:
            self.write(trainer)

    def on_train_end(self, trainer: Any) -> None:
        if trainer.is_main:
            self.write(trainer)
