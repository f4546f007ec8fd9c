"""Markdown tables from the JSON lines ``benchmarks/h100_session.sh`` writes (``$OUT/results.jsonl``).

    python benchmarks/summarize.py /tmp/out/results.jsonl > summary.md

One row per ``ganforge bench`` run (named by its BENCHES entry), then the translate numbers, so
a session's results go into ``benchmarks/RESULTS.md`` and closing notes without retyping.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BENCH_HEADER = (
    "| run | batch | per s | step median (p10-p90) | data wait | peak memory | MFU | compile | graph |"
    " vs official-like |\n|---|---|---|---|---|---|---|---|---|---|"
)


def bench_row(r: dict[str, Any]) -> str:
    """One table row for a ``ganforge bench --json`` result (or a failed run's name and code)."""
    if "samples_per_s" not in r:
        return f"| {r.get('name', '?')} | failed (exit {r.get('rc', '?')}) | | | | | | | | |"
    ms = 1e3
    step = (
        f"{r['step_time_median_s'] * ms:.2f} ms "
        f"({r['step_time_p10_s'] * ms:.2f}-{r['step_time_p90_s'] * ms:.2f})"
    )
    memory = f"{r['peak_memory_bytes'] / 2**30:.2f} GiB" if r.get("peak_memory_bytes") else "-"
    mfu = f"{r['mfu'] * 100:.1f} %" if "mfu" in r else "-"
    compiled = (r.get("compile_mode") or "yes") if r.get("compile") else "no"
    graph = "yes" if r.get("cuda_graph") else "no"
    if r.get("cuda_graph_off"):
        graph += f" ({r['cuda_graph_off']})"
    versus = ""
    if "baseline" in r:
        versus = f"{r['speedup']:.2f}x ({r['baseline']['samples_per_s']:.1f}/s)"
    return (
        f"| {r.get('name', '')} | {r['batch_size']} | {r['samples_per_s']:.1f} {r['sample_unit']} | {step} "
        f"| {r['data_wait_share'] * 100:.1f} % | {memory} | {mfu} | {compiled} | {graph} | {versus} |"
    )


def _number(value: Any) -> str:
    return f"{value:,.1f}" if isinstance(value, int | float) else "-"


def summarize(lines: list[str]) -> str:
    """The markdown for a results.jsonl file's lines."""
    results = [json.loads(line) for line in lines if line.strip()]
    benches = [r for r in results if "samples_per_s" in r or "rc" in r]
    translate = [r for r in results if any(k.startswith("images_per_s") for k in r)]
    out = []
    if benches:
        gpu = next((r["gpu"] for r in benches if r.get("gpu")), None)
        out += [f"Training steps{f' on {gpu}' if gpu else ''}:", "", BENCH_HEADER]
        out += [bench_row(r) for r in benches]
    for r in translate:
        out += ["", f"Translate, batch {r.get('batch_size')} on {r.get('device', '?')}:", ""]
        out += ["| measure | images/s |", "|---|---|"]
        out += [f"| {k} | {_number(v)} |" for k, v in r.items() if k.startswith("images_per_s")]
    return "\n".join(out) + "\n"


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    sys.stdout.write(summarize(Path(sys.argv[1]).read_text().splitlines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
