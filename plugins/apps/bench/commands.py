"""``ganforge bench``: time training steps of a recipe on its data."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ganforge.errors import GanforgeError


def get_registry() -> Any:
    from ganforge.plugins import get_registry as registry

    return registry()


@click.command("bench")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option(
    "--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a recipe value."
)
@click.option("--batch-size", type=int, default=None, help="Override train.batch_size.")
@click.option("--steps", type=int, default=20, show_default=True, help="Timed steps.")
@click.option("--warmup", type=int, default=5, show_default=True, help="Untimed steps first.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@click.option("--peak-tflops", type=float, default=None, help="The device's peak, for MFU (H100 bf16: ~790).")
@click.option("--no-flops", is_flag=True, help="Skip counting FLOPs (FlopCounterMode costs one slow step).")
@click.option(
    "--baseline",
    is_flag=True,
    help="First time the recipe's [baseline] (how a reference implementation trains it: e.g. fp32, "
    "NCHW, eager, unfused Adam); print both and the speed-up. Give it --warmup steps: it runs first, cold.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
def bench_command(
    recipe: str,
    overrides: tuple[str, ...],
    batch_size: int | None,
    steps: int,
    warmup: int,
    device: str | None,
    peak_tflops: float | None,
    no_flops: bool,
    baseline: bool,
    as_json: bool,
) -> None:
    """Time training steps of RECIPE on its real data: throughput, step time, data wait, memory, MFU."""
    from ganforge.recipe import Recipe

    from .bench import baseline as baseline_of
    from .bench import run_bench

    if steps < 1 or warmup < 0:
        raise GanforgeError("--steps must be >= 1 and --warmup >= 0")
    if peak_tflops is not None and not (0 < peak_tflops < float("inf")):
        raise GanforgeError(f"--peak-tflops must be a positive number, got {peak_tflops}")

    def bench(extra: list[str]) -> dict[str, Any]:
        source = Recipe.load(recipe, [*overrides, *extra])
        if batch_size is not None:
            source.set(f"train.batch_size={batch_size}")
        if device:
            source.set(f"train.device={json.dumps(device)}")
        return run_bench(
            source,
            get_registry(),
            steps=steps,
            warmup=warmup,
            peak_tflops=peak_tflops,
            count_flops=not no_flops,
        )

    base_name, base = "", None
    if baseline:
        base_name, items = baseline_of(Recipe.load(recipe, list(overrides)), get_registry())
        base = bench(items)
    result = bench([])
    if base is not None:
        result["baseline"] = base
        result["speedup"] = result["samples_per_s"] / base["samples_per_s"]
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    columns = [_bench_rows(result)] + ([_bench_rows(base)] if base is not None else [])
    table = Table(title=f"ganforge bench: {recipe}", show_header=base is not None)
    for header in ("", "ganforge", base_name)[: len(columns) + 1]:
        table.add_column(header)
    for cells in zip(*columns):
        table.add_row(cells[0][0], *(value for _, value in cells))
    if base is not None:
        table.add_row("speed-up", f"{result['speedup']:.2f}x", "1.00x")
    Console().print(table)


def _bench_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows for one ``run_bench`` result."""
    unit = result["sample_unit"]
    rows = [
        (
            "device",
            f"{result['gpu'] or result['device']} ({result['precision']}"
            f"{', channels_last' if result['channels_last'] else ''}"
            f"{', compiled' if result['compile'] else ''}"
            f"{' (' + result['compile_mode'] + ')' if result.get('compile_mode') else ''}"
            f"{', CUDA graph' if result['cuda_graph'] else ''})",
        ),
        ("batch size", str(result["batch_size"])),
        (f"{unit}/s", f"{result['samples_per_s']:.2f}"),
        ("step time (median)", f"{result['step_time_median_s'] * 1000:.1f} ms"),
        (
            "step time (p10-p90)",
            f"{result['step_time_p10_s'] * 1000:.1f} - {result['step_time_p90_s'] * 1000:.1f} ms",
        ),
        ("data-wait share", f"{result['data_wait_share'] * 100:.1f} %"),
        (
            "peak GPU memory",
            f"{result['peak_memory_bytes'] / 2**30:.2f} GiB" if result["peak_memory_bytes"] else "n/a",
        ),
        (
            "FLOPs per step",
            f"{result['flops_per_step'] / 1e12:.3f} TFLOP" if result["flops_per_step"] else "n/a",
        ),
        ("achieved", f"{result['achieved_tflops']:.2f} TFLOP/s" if "achieved_tflops" in result else "n/a"),
        ("MFU", _mfu_cell(result)),
        ("CUDA graphs off", result.get("cuda_graph_off") or "-"),
    ]
    return rows


def _mfu_cell(result: dict[str, Any]) -> str:
    if "mfu" in result:
        return f"{result['mfu'] * 100:.1f} %"
    return "n/a (FLOPs not counted)" if not result["flops_per_step"] else "n/a (give --peak-tflops)"
