"""``ganforge report``: one self-contained HTML page about a run folder.

The page holds everything inline: plots are SVG drawn here, sample grids are PNG data URIs,
the styles and the small slider script are in the page, and a Content-Security-Policy forbids
any network access. Sections: summary, environment (``run.json``), throughput, loss curves and
learning rates, the evaluated values at the best checkpoint and at the end side by side, metric
history (``eval/...`` values of ``metrics.jsonl``), sample grids over time
(a slider and a list) and the resolved recipe. Parts a run does not have yet are said to be
missing, not errors.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import ganforge
from ganforge import checkpoint as ckpt
from ganforge.api import read_records
from ganforge.errors import GanforgeError
from ganforge.safety import REPORT_MARK, atomic_write, ensure_writable_dir, guard_targets

PALETTE = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
]
MAX_SAMPLE_FRAMES = 60  # more sample grids than this: an even selection (first and last kept)
THROUGHPUT_KEYS = ("steps_per_s", "samples_per_s", "data_wait_share")
NON_LOSS_KEYS = {"step", "epoch", "time", *THROUGHPUT_KEYS}
_SAMPLE = re.compile(r"^step-(\d+)\.png$")
Series = dict[str, list[tuple[float, float]]]


# -- reading a run folder ----------------------------------------------------------------------


def _series(records: list[dict[str, Any]], keep: Any) -> Series:
    """Key -> (step, value) for numeric keys where ``keep(key)``; one value per step (the last)."""
    by_key: dict[str, dict[float, float]] = {}
    for r in records:
        for k, v in r.items():
            if keep(k) and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                by_key.setdefault(k, {})[float(r["step"])] = float(v)
    return {k: sorted(v.items()) for k, v in by_key.items()}


def loss_groups(records: list[dict[str, Any]]) -> dict[str, Series]:
    """Loss curves split into generator-side and discriminator-side charts."""
    losses = _series(records, lambda k: k not in NON_LOSS_KEYS and not k.startswith(("lr_", "eval/")))
    d_side = {k: v for k, v in losses.items() if k.startswith(("D", "gp"))}
    g_side = {k: v for k, v in losses.items() if k not in d_side}
    groups = {"Generator losses": g_side, "Discriminator losses": d_side}
    return {title: s for title, s in groups.items() if s}


def metric_groups(records: list[dict[str, Any]]) -> dict[str, Series]:
    """``eval/<direction>/<key>`` values grouped by key, one line per direction."""
    groups: dict[str, Series] = {}
    for name, points in _series(records, lambda k: k.startswith("eval/")).items():
        parts = name.split("/")
        key, line = (parts[-1], "/".join(parts[1:-1]) or "value") if len(parts) > 2 else (parts[-1], "value")
        groups.setdefault(key, {})[line] = points
    return dict(sorted(groups.items()))


def _eval_values(record: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in record.items()
        if k.startswith("eval/") and isinstance(v, int | float) and not isinstance(v, bool)
    }


def best_and_final(records: list[dict[str, Any]], best_step: int | None, latest_step: int | None) -> str:
    """The "Best and final" section's body: the evaluated values at the best checkpoint's step and at
    the last evaluation, side by side, saying which checkpoint file holds each ("" without
    evaluations)."""
    esc = html.escape
    evals = [r for r in records if _eval_values(r)]
    if not evals:
        return ""
    final = evals[-1]
    final_step = int(final["step"])
    best = (
        next((r for r in reversed(evals) if int(r["step"]) == best_step), None)
        if best_step is not None
        else None
    )
    # the value that chose the best: the eval callback names it in the record of each new best
    chosen = next((str(r["eval/best"]) for r in reversed(evals) if isinstance(r.get("eval/best"), str)), "")
    if latest_step == final_step:
        final_file = f"checkpoints/step-{final_step:08d}.safetensors (the latest)"
    elif latest_step is not None:
        final_file = f"no checkpoint of this step; the latest is step {latest_step:,}"
    else:
        final_file = "no checkpoint yet"
    columns = []
    if best is not None:
        columns.append((f"best: step {best_step:,}", "checkpoints/best.safetensors", _eval_values(best)))
    columns.append((f"final: step {final_step:,}", final_file, _eval_values(final)))
    keys = list(dict.fromkeys(k for _, _, values in columns for k in values))
    keys.sort(key=lambda k: (k.split("/")[-1].endswith("_std"), k.split("/")[-1], k))
    head = "".join(f"<th>{esc(t)}<br><span class='muted'>{esc(f)}</span></th>" for t, f, _ in columns)
    rows = []
    for key in keys:
        name = key.removeprefix("eval/")
        mark = " &#9733;" if name == chosen else ""
        cells = "".join(
            f"<td class='num'>{_fmt(values[key]) if key in values else '&ndash;'}</td>"
            for _, _, values in columns
        )
        better = "higher" if higher_is_better(name) else "lower"
        rows.append(f"<tr><td>{esc(name)}{mark}</td>{cells}<td>{better}</td></tr>")
    if best is None:
        why = (
            f"best.safetensors holds step {best_step:,}, which has no evaluation in metrics.jsonl"
            if best_step is not None
            else 'no best checkpoint: <code>[callbacks.eval] best = "kid"</code> keeps one'
        )
        note = f"<p class='muted'>{why}</p>"
    else:
        note = f"<p class='muted'>&#9733; chose the best checkpoint ({esc(chosen)}).</p>" if chosen else ""
    protocol = final.get("eval/protocol")
    if isinstance(protocol, str):
        note += f"<p class='muted'>FID/KID protocol: {esc(protocol)}.</p>"
    return f"<table id='best-final'><tr><th>value</th>{head}<th>better</th></tr>{''.join(rows)}</table>{note}"


def higher_is_better(key: str) -> bool:
    return any(word in key.lower() for word in ("psnr", "ssim", "accuracy", "precision", "recall", "is_"))


def sample_frames(samples: Path) -> list[tuple[int, Path]]:
    """(step, file) of ``samples/step-N.png``, by step."""
    if not samples.is_dir():
        return []
    frames = [(int(m.group(1)), p) for p in samples.iterdir() if (m := _SAMPLE.match(p.name)) and p.is_file()]
    return sorted(frames)


def _thin(frames: list[Any], limit: int) -> list[Any]:
    if len(frames) <= limit:
        return frames
    picks = sorted({round(i * (len(frames) - 1) / (limit - 1)) for i in range(limit)})
    return [frames[i] for i in picks]


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


# -- SVG line charts ---------------------------------------------------------------------------


def axis_range(points: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) framing ``points``: never empty, with 5 % headroom on y."""
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - (abs(y0) * 0.1 or 0.5), y1 + (abs(y1) * 0.1 or 0.5)
    pad = (y1 - y0) * 0.05
    return x0, x1, y0 - pad, y1 + pad


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    t = math.ceil(lo / step) * step
    ticks = []
    while t <= hi + step * 1e-9:
        ticks.append(0.0 if abs(t) < step * 1e-9 else t)
        t += step
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.2e}"
    return f"{v:.4g}"


def svg_chart(
    series: Series, title: str = "", x_label: str = "step", width: int = 860, height: int = 300
) -> str:
    """An inline SVG line chart of named (x, y) series, with axes, grid, ticks and a legend."""
    esc = html.escape
    left, right, top, bottom = 64, min(170, width // 4), 30, 40
    pw, ph = width - left - right, height - top - bottom
    points = [(x, y) for pts in series.values() for x, y in pts]
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{esc(title)}">',
        f'<text x="{left}" y="18" class="ct">{esc(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/>',
    ]
    if not points:
        out.append(f'<text x="{left + 12}" y="{top + 24}" class="muted">no data yet</text></svg>')
        return "".join(out)
    x0, x1, y0, y1 = axis_range(points)

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + ph - (y - y0) / (y1 - y0) * ph

    for t in nice_ticks(y0, y1):
        if y0 <= t <= y1:
            out.append(
                f'<line x1="{left}" y1="{sy(t):.1f}" x2="{left + pw}" y2="{sy(t):.1f}" class="grid"/>'
                f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" class="tick" text-anchor="end">{_fmt(t)}</text>'
            )
    for t in nice_ticks(x0, x1, 6):
        if x0 <= t <= x1:
            out.append(
                f'<line x1="{sx(t):.1f}" y1="{top + ph}" x2="{sx(t):.1f}" y2="{top + ph + 4}" class="axis"/>'
                f'<text x="{sx(t):.1f}" y="{top + ph + 16}" class="tick" '
                f'text-anchor="middle">{_fmt(t)}</text>'
            )
    out.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 6}" class="tick" '
        f'text-anchor="middle">{esc(x_label)}</text>'
    )
    for i, (name, pts) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        xy = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        if len(pts) == 1:
            out.append(f'<circle cx="{sx(pts[0][0]):.1f}" cy="{sy(pts[0][1]):.1f}" r="3" fill="{color}"/>')
        elif pts:
            out.append(
                f'<polyline points="{xy}" fill="none" stroke="{color}" stroke-width="1.8" '
                f'stroke-linejoin="round"/>'
            )
        last = pts[-1][1] if pts else float("nan")
        ly = top + 8 + 18 * i
        out.append(
            f'<line x1="{left + pw + 12}" y1="{ly}" x2="{left + pw + 32}" y2="{ly}" stroke="{color}" '
            f'stroke-width="3"/><text x="{left + pw + 38}" y="{ly + 4}" class="legend">{esc(name)} '
            f'<tspan class="muted">{_fmt(last)}</tspan></text>'
        )
    out.append("</svg>")
    return "".join(out)


# -- the page ------------------------------------------------------------------------------------

CSS = """
:root { color-scheme: light; }
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; margin: 0;
       background: #f5f6f8; color: #1d2330; }
header { background: #1d2330; color: #fff; padding: 20px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .sub { color: #b8c0cc; font-size: 13px; word-break: break-all; }
nav { padding: 8px 32px; background: #e8ebf0; font-size: 13px; }
nav a { margin-right: 14px; color: #2a5db0; text-decoration: none; }
main { padding: 8px 32px 40px; max-width: 1100px; }
section { background: #fff; border: 1px solid #dde1e7; border-radius: 8px; padding: 14px 20px;
          margin: 16px 0; }
h2 { font-size: 17px; margin: 2px 0 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid #dde1e7; border-radius: 6px; padding: 8px 14px; min-width: 130px;
        background: #fafbfc; }
.card .v { font-size: 20px; font-weight: 600; }
.card .k { font-size: 12px; color: #5b6472; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border-bottom: 1px solid #eceef2; padding: 4px 14px 4px 0; text-align: left; vertical-align: top; }
th { color: #5b6472; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f8fa; border: 1px solid #e3e6eb; border-radius: 6px; padding: 10px 12px; font-size: 12px;
      overflow: auto; max-height: 520px; }
.grid2 { display: flex; flex-wrap: wrap; gap: 0 16px; }
.grid2 .chart { width: 520px; }
.chart { max-width: 100%; height: auto; display: block; margin: 4px 0 10px; }
.chart .ct { font-size: 13px; font-weight: 600; fill: #1d2330; }
.chart .frame { fill: #fff; stroke: #9aa3af; }
.chart .grid { stroke: #eceef2; }
.chart .axis { stroke: #9aa3af; }
.chart .tick, .chart .legend { font-size: 11px; fill: #333; }
.chart .muted, .muted { fill: #7a8391; color: #7a8391; }
.frames figure { margin: 0; }
.frames img { width: 100%; max-width: 1000px; image-rendering: pixelated; border: 1px solid #dde1e7; }
.slider { display: flex; align-items: center; gap: 12px; margin: 4px 0 10px; }
.slider input { flex: 1; max-width: 640px; }
.steps-label { font-size: 12px; margin-top: 10px; }
.steps { display: flex; flex-wrap: wrap; gap: 6px; margin: 4px 0 0; padding: 0; list-style: none; }
.steps button { font: inherit; font-size: 12px; padding: 2px 8px; border: 1px solid #c9ced6;
                border-radius: 4px; background: #fff; cursor: pointer; }
.steps button.on { background: #2a5db0; color: #fff; border-color: #2a5db0; }
"""

SCRIPT = """
(function () {
  var slider = document.getElementById("sample-slider");
  if (!slider) { return; }
  var frames = document.querySelectorAll("#sample-frames figure");
  var buttons = document.querySelectorAll("#sample-steps button");
  var label = document.getElementById("sample-label");
  function show(i) {
    if (!(i >= 0 && i < frames.length)) { return; }
    for (var k = 0; k < frames.length; k++) { frames[k].hidden = (k !== i); }
    for (var b = 0; b < buttons.length; b++) { buttons[b].className = (b === i) ? "on" : ""; }
    slider.value = String(i);
    label.textContent = frames[i].getAttribute("data-caption");
  }
  slider.addEventListener("input", function () { show(parseInt(slider.value, 10)); });
  for (var b = 0; b < buttons.length; b++) {
    buttons[b].addEventListener("click", function (event) {
      show(parseInt(event.currentTarget.getAttribute("data-frame"), 10));
    });
  }
  show(frames.length - 1);
})();
"""

CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)


def _table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _card(value: str, key: str) -> str:
    v, k = html.escape(value), html.escape(key)
    return f'<div class="card"><div class="v">{v}</div><div class="k">{k}</div></div>'


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m:02d}m" if h else (f"{m}m {s:02d}s" if m else f"{s}s")


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _checkpoint_meta(run_dir: Path) -> tuple[Path | None, dict[str, Any]]:
    """The latest checkpoint and its metadata, checked whole: a damaged one is an error, not a
    report that looks fine (a run without checkpoints yet is not an error)."""
    latest = ckpt.CheckpointDir(run_dir / "checkpoints").latest()
    if latest is None:
        return None, {}
    return latest, _verified(latest)


def _verified(file: Path) -> dict[str, Any]:
    """The checkpoint's metadata once it is checked whole: every checksum and the training state,
    and its model card against the networks it builds (what inference of it would load)."""
    from ganforge.model import Model

    meta = ckpt.verify(file)[1]
    Model.load(file, "cpu")
    return meta


def _recipe_info(text: str) -> dict[str, Any]:
    try:
        import tomllib

        return tomllib.loads(text)
    except Exception:
        return {}


def as_run_description(description: str, recipe: dict[str, Any]) -> str:
    """The recipe file's description, with an image size the run did not use corrected.

    Descriptions are written for the recipe file ("..., 256 px, ..."); ``--set
    data.image_size=64`` makes that stale, so the size the run used replaces it.
    """
    size = (recipe.get("data") or {}).get("image_size")
    if not isinstance(size, int):
        return description

    def fix(match: re.Match[str]) -> str:
        said = int(match.group(1))
        return match.group(0) if said == size else f"{size} px (the recipe file says {said} px)"

    return re.sub(r"\b(\d+) ?px\b", fix, description)


def as_run(recipe: dict[str, Any], run_info: dict[str, Any]) -> str:
    """What the run used, from its resolved recipe: size, networks, batch, steps, device."""
    parts = []
    data = recipe.get("data") or {}
    if isinstance(data.get("image_size"), int):
        parts.append(f"{data['image_size']} px")
    for section in ("generator", "discriminator"):
        table = recipe.get(section)
        if isinstance(table, dict) and "name" in table:
            keys = ("ngf", "ndf", "blocks", "n_layers", "layers", "latent_dim")
            opts = ", ".join(f"{k} {table[k]}" for k in keys if k in table)
            parts.append(f"{section} {table['name']}" + (f" ({opts})" if opts else ""))
    train = recipe.get("train") or {}
    if "batch_size" in train:
        parts.append(f"batch {train['batch_size']}")
    total = run_info.get("total_steps")
    if isinstance(total, int):
        parts.append(f"{total:,} steps")
    runtime = run_info.get("runtime") or {}
    if runtime.get("device"):
        parts.append(f"{runtime['device']} {runtime.get('precision', '')}".strip())
    return ", ".join(parts)


def build_report(run_dir: Path) -> str:
    """The report page for ``run_dir`` as an HTML string."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GanforgeError(f"run folder {run_dir} not found")
    recipe_file = run_dir / "recipe.resolved.toml"
    records = read_records(run_dir / "metrics.jsonl")
    run_info = _read_json(run_dir / "run.json")
    frames = sample_frames(run_dir / "samples")
    if not (recipe_file.is_file() or records or run_info or frames):
        raise GanforgeError(
            f"{run_dir} is not a run folder (no recipe.resolved.toml, run.json, metrics.jsonl or samples/)"
        )
    recipe_text = recipe_file.read_text(encoding="utf-8", errors="replace") if recipe_file.is_file() else ""
    recipe = _recipe_info(recipe_text)
    latest_ckpt, meta = _checkpoint_meta(run_dir)
    esc = html.escape

    table = recipe.get("objective")
    name = table.get("name") if isinstance(table, dict) else None
    objective = str(name or meta.get("objective") or "?")
    description = recipe.get("description", "")
    description = description if isinstance(description, str) else ""
    last = records[-1] if records else {}
    step = int(max([r["step"] for r in records] + [meta.get("step", 0)]))
    total = run_info.get("total_steps")
    parts: list[str] = []

    # summary
    cards = [
        _card(f"{step:,}" + (f" / {total:,}" if isinstance(total, int) else ""), "steps"),
        _card(str(last.get("epoch", meta.get("epoch", "?"))), "epoch"),
    ]
    times = [r["time"] for r in records if isinstance(r.get("time"), int | float)]
    if len(times) > 1:
        cards.append(_card(_duration(times[-1] - times[0]), "logged time span"))
    best = run_dir / "checkpoints" / "best.safetensors"
    summary_rows: list[tuple[str, Any]] = [("run folder", str(run_dir.resolve())), ("objective", objective)]
    if description:
        summary_rows.append(("description", as_run_description(description, recipe)))
    facts = as_run(recipe, run_info)
    if facts:
        summary_rows.append(("as run", facts))
    if run_info.get("overrides"):
        summary_rows.append(("changed with --set", ", ".join(map(str, run_info["overrides"]))))
    if latest_ckpt is not None:
        summary_rows.append(("latest checkpoint", latest_ckpt.name))
    best_step: int | None = None
    if best.is_file():
        best_step = int(_verified(best)["step"])
        summary_rows.append(("best checkpoint", f"{best.name} (step {best_step})"))
    parts.append(
        f'<section id="summary"><h2>Summary</h2><div class="cards">{"".join(cards)}</div>'
        f"<p></p>{_table(summary_rows)}</section>"
    )

    # environment
    runtime = run_info.get("runtime") if isinstance(run_info.get("runtime"), dict) else {}
    env_rows: list[tuple[str, Any]] = []
    for key, label in (
        ("device", "device"),
        ("gpu", "GPU"),
        ("precision", "precision"),
        ("channels_last", "channels_last"),
        ("torch", "torch version"),
        ("cpu_count", "CPU cores"),
    ):
        if key in runtime:
            env_rows.append((label, runtime[key]))
    if "ganforge" in meta:
        env_rows.append(("ganforge version", meta["ganforge"]))
    for key, label in (
        ("world_size", "processes (world size)"),
        ("dataset_size", "dataset size"),
        ("steps_per_epoch", "steps per epoch"),
        ("total_steps", "total steps"),
    ):
        if key in run_info:
            env_rows.append((label, run_info[key]))
    env_html = _table(env_rows) if env_rows else '<p class="muted">No run.json in this folder.</p>'
    parts.append(f'<section id="environment"><h2>Environment</h2>{env_html}</section>')

    # throughput
    tp = _series(records, lambda k: k in THROUGHPUT_KEYS)
    latest_tp = next((r for r in reversed(records) if "steps_per_s" in r), {})
    if latest_tp:
        tcards = [
            _card(f"{latest_tp['steps_per_s']:.2f}", "steps / s"),
            _card(f"{latest_tp.get('samples_per_s', 0):.1f}", "samples / s"),
            _card(f"{100 * latest_tp.get('data_wait_share', 0):.1f} %", "time waiting for data"),
        ]
        chart = svg_chart(
            {k: v for k, v in tp.items() if k != "data_wait_share"},
            "steps and samples per second (each over its log interval)",
        )
        parts.append(
            f'<section id="throughput"><h2>Throughput</h2><div class="cards">{"".join(tcards)}</div>'
            f"{chart}</section>"
        )
    else:
        parts.append(
            '<section id="throughput"><h2>Throughput</h2><p class="muted">No throughput logged yet.</p>'
            "</section>"
        )

    # losses
    groups = loss_groups(records)
    lr = _series(records, lambda k: k.startswith("lr_"))
    if groups:
        charts = "".join(svg_chart(series, title) for title, series in groups.items())
        if lr:
            charts += svg_chart(lr, "learning rates")
        parts.append(f'<section id="losses"><h2>Loss curves</h2>{charts}</section>')
    else:
        parts.append(
            '<section id="losses"><h2>Loss curves</h2><p class="muted">No losses logged yet '
            "(metrics.jsonl is missing or empty).</p></section>"
        )

    # best and final
    body = best_and_final(records, best_step, meta.get("step") if latest_ckpt is not None else None)
    if body:
        parts.append(f'<section id="quality"><h2>Best and final</h2>{body}</section>')

    # metrics
    mgroups = metric_groups(records)
    if mgroups:
        rows = []
        for key, series in mgroups.items():
            better_high = higher_is_better(key)
            for line, pts in series.items():
                values = [v for _, v in pts]
                best_v = max(values) if better_high else min(values)
                best_step = next(s for s, v in pts if v == best_v)
                rows.append(
                    f"<tr><td>{esc(key)}</td><td>{esc(line)}</td><td class='num'>{_fmt(values[-1])}</td>"
                    f"<td class='num'>{_fmt(best_v)}</td><td class='num'>{int(best_step)}</td>"
                    f"<td>{'higher' if better_high else 'lower'}</td></tr>"
                )
        table = (
            "<table><tr><th>metric</th><th>direction</th><th>latest</th><th>best</th><th>at step</th>"
            f"<th>better</th></tr>{''.join(rows)}</table>"
        )
        charts = (
            '<div class="grid2">'
            + "".join(svg_chart(series, key, width=520, height=230) for key, series in mgroups.items())
            + "</div>"
        )
        parts.append(f'<section id="metrics"><h2>Metric history</h2>{table}{charts}</section>')
    else:
        parts.append(
            '<section id="metrics"><h2>Metric history</h2><p class="muted">No evaluation metrics logged. '
            "Add the <code>eval</code> callback to the recipe (<code>[callbacks.eval]</code>) to track "
            "them during training, or run <code>ganforge eval</code> on a checkpoint.</p></section>"
        )

    # samples
    shown = _thin(frames, MAX_SAMPLE_FRAMES)
    if shown:
        figures, buttons = [], []
        for i, (s, path) in enumerate(shown):
            caption = f"step {s:,}"
            hidden = "" if i == len(shown) - 1 else " hidden"
            figures.append(
                f'<figure data-caption="{esc(caption)}"{hidden}><img src="{_data_uri(path)}" '
                f'alt="samples at {esc(caption)}"></figure>'
            )
            buttons.append(f'<li><button type="button" data-frame="{i}">{s:,}</button></li>')
        note = (
            f"<p class='muted'>{len(frames)} grids; {len(shown)} evenly spaced ones shown.</p>"
            if len(shown) < len(frames)
            else ""
        )
        parts.append(
            f'<section id="samples"><h2>Samples over time</h2>{note}'
            f'<div class="slider"><input id="sample-slider" type="range" min="0" max="{len(shown) - 1}" '
            f'value="{len(shown) - 1}" step="1" aria-label="sample step"><span id="sample-label">'
            f"{esc(f'step {shown[-1][0]:,}')}</span></div>"
            f'<div id="sample-frames" class="frames">{"".join(figures)}</div>'
            f'<div class="muted steps-label">all grids, by step:</div>'
            f'<ol id="sample-steps" class="steps">{"".join(buttons)}</ol></section>'
        )
    else:
        parts.append(
            '<section id="samples"><h2>Samples over time</h2><p class="muted">No sample grids yet '
            "(samples/step-*.png).</p></section>"
        )

    # recipe
    recipe_html = (
        f"<pre>{esc(recipe_text)}</pre>" if recipe_text else '<p class="muted">No recipe.resolved.toml.</p>'
    )
    parts.append(f'<section id="recipe"><h2>Resolved recipe</h2>{recipe_html}</section>')

    nav = "".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in (
            ("summary", "Summary"),
            ("environment", "Environment"),
            ("throughput", "Throughput"),
            ("losses", "Losses"),
            *([("quality", "Best and final")] if body else []),
            ("metrics", "Metrics"),
            ("samples", "Samples"),
            ("recipe", "Recipe"),
        )
    )
    title = f"ganforge report: {run_dir.resolve().name}"
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{REPORT_MARK}'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{esc(title)}</h1><div class="sub">{esc(objective)} &middot; '
        f"{esc(str(run_dir.resolve()))} &middot; generated {generated} by ganforge "
        f"{ganforge.__version__}</div>"
        f"</header><nav>{nav}</nav><main>{''.join(parts)}</main>"
        + (f"<script>{SCRIPT}</script>" if shown else "")
        + "</body></html>\n"
    )


def write_report(run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Write the report (default ``RUN_DIR/report.html``) atomically; returns its path.

    An existing file is replaced only when it is an earlier ganforge report.
    """
    run_dir = Path(run_dir)
    path = Path(out) if out else run_dir / "report.html"
    guard_targets([path], flag="--out")
    page = build_report(run_dir)
    ensure_writable_dir(path.parent, "--out folder")
    atomic_write(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    return path
