"""The ``ganforge`` command line: list, run, translate, sample (plugins may add more).

Start-up stays cheap: this module imports click and rich only. torch, the checkpoint code and
the plugins load inside the commands that need them, so ``ganforge --help``, ``--version`` and
``ganforge COMMAND --help`` of a built-in command import neither torch nor any plugin.
Plugin commands (``register_commands``) load only when needed: when the command named on the
command line is not a built-in one (every plugin then loads, as for any command that uses the
registry), and for the top-level ``--help`` listing, which imports only third-party plugin
modules (the bundled plugins add no commands: ganforge's own commands are built in here). A
plugin command never replaces a built-in one of the same name.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ganforge import __version__
from ganforge.errors import GanforgeError


def get_host() -> Any:
    """The process-wide plugin host (loads every plugin on first use)."""
    from ganforge.plugins import get_host as host

    return host()


def get_registry() -> Any:
    """The registry filled from every loaded plugin."""
    return get_host().registry


def warn_failures() -> None:
    from ganforge.plugins import warn_failures as warn

    warn()


EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


class GanforgeGroup(click.Group):
    """Prints a user error as one line (exit 2; 3 for a non-finite loss); a bug keeps its traceback.

    The machine's refusals are user errors too: a file that cannot be written (read-only folder,
    full disk) and memory the device does not have. Plugin commands are added on demand (the
    module docstring says when).
    """

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and not _PLUGIN_COMMANDS["loaded"]:
            _add_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        if not _PLUGIN_COMMANDS["loaded"]:
            _add_third_party_commands()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GanforgeError as exc:
            message = " ".join(str(exc).split("\n"))
            click.echo(f"error: {message}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:
            from ganforge.safety import describe_os_error

            click.echo(f"error: {describe_os_error(exc)}", err=True)
            ctx.exit(2)
        except (MemoryError, RuntimeError) as exc:
            from ganforge.registry import describe_exception

            text = str(exc)
            if not (
                isinstance(exc, MemoryError)
                or type(exc).__name__ == "OutOfMemoryError"
                or "can't allocate memory" in text
                or "out of memory" in text.lower()
            ):
                raise
            click.echo(
                f"error: out of memory ({describe_exception(exc)}); use smaller sizes or batches", err=True
            )
            ctx.exit(2)


@click.group(cls=GanforgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ganforge")
def cli() -> None:
    """ganforge: train and use GANs built from plugins."""


# -- list ------------------------------------------------------------------------------------


@cli.command("list")
@click.argument("kind", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON array.")
@click.option("--plugins", "show_plugins", is_flag=True, help="Show loaded and failed plugins instead.")
@click.option("--kinds", "show_kinds", is_flag=True, help="Show the component kinds and who registered them.")
def list_command(kind: str | None, as_json: bool, show_plugins: bool, show_kinds: bool) -> None:
    """List registered components, grouped by kind (or the plugins, or the kinds)."""
    host = get_host()
    if show_plugins:
        if not _PLUGIN_COMMANDS["loaded"]:
            _add_plugin_commands()  # a plugin whose register_commands fails is listed as failed
        if as_json:
            click.echo(json.dumps([p.to_json() for p in host.plugins], indent=2))
            return
        table = Table(title="ganforge plugins")
        for col in ("plugin", "distribution", "version", "status", "hooks / error"):
            table.add_column(col)
        for p in host.plugins:
            status = "[green]loaded" if p.loaded else "[red]failed"
            table.add_row(p.name, p.distribution, p.version, status, p.error or ", ".join(p.hooks))
        Console().print(table)
        return
    warn_failures()
    registry = host.registry
    if show_kinds:
        kinds = [registry.kind(k) for k in registry.kinds()]
        if as_json:
            click.echo(json.dumps([k.to_json() for k in kinds], indent=2))
            return
        table = Table(title="component kinds", title_justify="left")
        for col in ("kind", "hook", "plugin", "doc"):
            table.add_column(col)
        for k in kinds:
            table.add_row(k.name, k.hook, f"{k.plugin} ({k.distribution})", k.doc)
        Console().print(table)
        return
    components = registry.all(kind)
    if as_json:
        click.echo(json.dumps([_component_json(registry, c) for c in components], indent=2))
        return
    console = Console()
    kinds = [registry._kind(kind)] if kind else registry.kinds()
    for k in kinds:
        rows = [c for c in components if c.kind == k]
        if not rows:
            continue
        table = Table(title=_plural(k), title_justify="left", show_lines=False)
        table.add_column("name", style="bold cyan")
        table.add_column("options")
        table.add_column("plugin")
        table.add_column("doc")
        for c in rows:
            opts = ", ".join(
                f"{p.name}: {p.type_name}" + ("" if p.required else f" = {p.to_json()['default']!r}")
                for p in c.params
            )
            doc = c.doc
            if c.kind == "objective":
                doc += "\n" + _declaration_summary(registry, c.name)
            table.add_row(c.name, escape(opts), f"{c.plugin} ({c.distribution} {c.version})", escape(doc))
        console.print(table)


def _component_json(registry: Any, component: Any) -> dict[str, Any]:
    data = component.to_json()
    if component.kind == "objective":
        from ganforge.recipe import objective_class

        try:
            data["declares"] = objective_class(registry, component.name).declares.to_json()
        except GanforgeError as exc:
            data["error"] = str(exc)
    return data


def _declaration_summary(registry: Any, name: str) -> str:
    """One line per part group of an objective's declaration, for ``ganforge list``."""
    from ganforge.recipe import objective_class

    try:
        d = objective_class(registry, name).declares
    except GanforgeError as exc:
        return str(exc)
    sections = ", ".join(
        f"[{s.name}" + (f".{{{','.join(s.roles)}}}" if s.roles else "") + "]" + ("" if s.required else "?")
        for s in d.sections
    )
    optimizers = ", ".join(f"{n} -> {'+'.join(o.steps)}" for n, o in d.optimizers.items())
    lines = [
        f"sections: {sections}",
        f"networks: {', '.join(d.networks)}",
        f"optimizers: {optimizers}",
        f"batch: {', '.join(d.batch_keys)}",
    ]
    if d.directions:
        lines.append(f"translates: {', '.join(d.directions)}")
    if d.noise:
        lines.append(f"generates from noise ({d.noise})")
    return "\n".join(lines)


# -- run -------------------------------------------------------------------------------------


@cli.command("run")
@click.argument("recipe", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help='Override a recipe value (repeatable). Values parse as TOML: 3, 1e-4, true, [1, 2], "s".',
)
@click.option("--out", "out", type=click.Path(file_okay=False), help="Run folder (default: runs/NAME-TIME).")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default=None,
    help="Where to train (default: the recipe's train.device, auto).",
)
@click.option("--resume", type=click.Path(), help="Continue a run: its folder or a checkpoint file.")
@click.option(
    "--nproc",
    type=click.IntRange(0, 1024),  # processes: each is one (and holds a device on CUDA)
    default=0,
    help="Launch N processes with torchrun (DDP).",
)
def run_command(
    recipe: str | None,
    overrides: tuple[str, ...],
    out: str | None,
    device: str | None,
    resume: str | None,
    nproc: int,
) -> None:
    """Train from RECIPE (a TOML file), or continue a run with --resume."""
    if nproc and nproc > 1 and "LOCAL_RANK" not in os.environ:
        from ganforge.distributed import launch

        sys.exit(launch(sys.argv[1:], nproc))
    if recipe is None and resume is None:
        raise click.UsageError("give a RECIPE, or --resume RUN_DIR")
    from ganforge import checkpoint as ckpt  # imports torch: not at start-up (`ganforge data` stays light)

    warn_failures()
    registry = get_registry()
    from ganforge.recipe import Recipe

    if resume:
        file = ckpt.resolve(resume)
        meta = ckpt.read_run_meta(file)
        source = Recipe.from_saved(meta["recipe"], f"{file} (saved recipe)", list(overrides))
        if recipe is not None and not Path(recipe).is_file():
            raise GanforgeError(f"recipe {recipe} not found")
    else:
        source = Recipe.load(recipe, list(overrides))
    if device:
        source.set(f"train.device={json.dumps(device)}")
    resolved = source.resolve(registry)

    from ganforge import distributed

    train = resolved["train"]
    dist = distributed.setup(train["device"], train["precision"], train["channels_last"], train["compile"])
    if resume:
        from ganforge.safety import resume_run_dir

        run_dir = resume_run_dir(ckpt.resolve(resume), Path(out) if out else None)
    else:
        stem = Path(recipe).stem if recipe else "run"
        run_dir = Path(out) if out else Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        if dist.rank == 0 and ckpt.CheckpointDir(run_dir / "checkpoints").steps():
            raise GanforgeError(
                f"{run_dir} already holds a run's checkpoints; continue it with "
                f"--resume {run_dir}, or choose another --out"
            )
        from ganforge.safety import run_contents

        held = run_contents(run_dir) if dist.rank == 0 else []
        if held:  # a run that never wrote a checkpoint is still not overwritten
            raise GanforgeError(
                f"{run_dir} already holds a run ({', '.join(held)}); choose another --out, or move it away"
            )
    if dist.rank == 0:
        from ganforge.safety import ensure_writable_dir

        ensure_writable_dir(run_dir, "run folder")  # before any work: read-only, missing rights
    from ganforge.trainer import Trainer

    trainer = Trainer(
        resolved, run_dir, registry, rank=dist.rank, world_size=dist.world_size, runtime=dist.runtime
    )
    if resume:
        file = trainer.resume(resume)
        if trainer.is_main:
            click.echo(f"resumed from {file} at step {trainer.step} (epoch {trainer.epoch})", err=True)
        if trainer.step >= trainer.total_steps:
            click.echo(
                f"nothing to do: the run is at step {trainer.step} and train.max_steps is "
                f"{trainer.total_steps} (raise it with --set train.max_steps=N)",
                err=True,
            )
            return
    summary = trainer.fit()
    dist.cleanup()
    if trainer.is_main:
        last = trainer.checkpoints.latest()
        click.echo(f"run folder: {run_dir}  step {summary['step']}  checkpoint: {last}", err=True)
    if summary["stopped"]:
        click.echo(f"stopped by {summary['stopped']} after a checkpoint at step {summary['step']}", err=True)
        sys.exit(EXIT_SIGNAL.get(summary["stopped"], 1))


# -- translate -------------------------------------------------------------------------------


@cli.command("translate")
@click.argument("checkpoint", type=click.Path())
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "--direction", default=None, help="A direction the objective declares (default: its first one)."
)
@click.option("--out", "out", type=click.Path(file_okay=False), default="translated", show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--batch-size", type=int, default=None, help="Images per batch (default: 64 on CUDA, 8 on CPU)."
)
@click.option(
    "--compile", "compile_", is_flag=True, help="Compile the generator: slower start, faster on big folders."
)
@click.option(
    "--size",
    type=int,
    default=None,
    help="Square size the model sees (default: the training image size; 0: native, /4 rounded).",
)
@click.option("--composite", default=None, help="Paste the result into the photo with this mask provider.")
@click.option("--feather", type=int, default=None, help="Mask feathering in pixels (with --composite).")
@click.option("--save-mask", is_flag=True, help="Also write the mask used (with --composite).")
def translate_command(
    checkpoint: str,
    inputs: tuple[str, ...],
    direction: str | None,
    out: str,
    device: str,
    batch_size: int | None,
    compile_: bool,
    size: int | None,
    composite: str | None,
    feather: int | None,
    save_mask: bool,
) -> None:
    """Translate image files or folders with a trained checkpoint; outputs keep the input's size."""
    from ganforge.translate import translate_files

    registry = get_registry()
    failures = translate_files(
        checkpoint,
        list(inputs),
        Path(out),
        registry,
        direction=direction,
        device=device,
        batch_size=batch_size,
        size=size,
        composite=composite,
        feather=feather,
        save_mask=save_mask,
        compile=compile_,
    )
    if failures:
        sys.exit(2)


# -- sample ----------------------------------------------------------------------------------


@cli.command("sample")
@click.argument("checkpoint", type=click.Path())
@click.option("-n", "count", type=int, default=64, show_default=True, help="How many images.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default="samples.png", show_default=True)
@click.option("--seed", type=int, default=None, help="Noise seed (same seed, same images).")
@click.option(
    "--individual", type=click.Path(file_okay=False), default=None, help="Also write each image here."
)
@click.option("--interpolate", is_flag=True, help="A latent walk: each row goes between two random points.")
@click.option("--steps", type=int, default=8, show_default=True, help="Images per row with --interpolate.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def sample_command(
    checkpoint: str,
    count: int,
    out: str,
    seed: int | None,
    individual: str | None,
    interpolate: bool,
    steps: int,
    device: str,
) -> None:
    """Generate a grid of samples from a trained generator."""
    from ganforge.sampling import sample_to_files

    paths = sample_to_files(
        checkpoint,
        get_registry(),
        count=count,
        out=Path(out),
        seed=seed,
        individual=Path(individual) if individual else None,
        interpolate=interpolate,
        steps=steps,
        device=device,
    )
    click.echo(f"wrote {paths[0]}" + (f" and {len(paths) - 1} images" if len(paths) > 1 else ""), err=True)


# -- eval ------------------------------------------------------------------------------------


@cli.command("eval")
@click.argument("checkpoint", type=click.Path())
@click.argument("more_data", nargs=-1, type=click.Path(), metavar="")
@click.option(
    "--data",
    "data",
    multiple=True,
    type=click.Path(),
    metavar="A_DIR [B_DIR]",
    help="Test images: two folders (A B) for a translation model, one for a generator.",
)
@click.option(
    "--metrics",
    "metrics",
    default="fid,kid,cycle",
    show_default=True,
    help="Comma-separated metric names (see 'ganforge list metrics').",
)
@click.option("--weights", default="", help="FID Inception weights file (.pth or .safetensors).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option(
    "--max-images", type=int, default=0, show_default=True, help="At most N images per folder (0: all)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Noise seed for generator checkpoints.")
def eval_command(
    checkpoint: str,
    more_data: tuple[str, ...],
    data: tuple[str, ...],
    metrics: str,
    weights: str,
    as_json: bool,
    device: str,
    batch_size: int,
    max_images: int,
    seed: int,
) -> None:
    """Score CHECKPOINT on test images (FID, KID, cycle metrics per direction).

    Usage: ganforge eval CHECKPOINT --data A_DIR B_DIR [--metrics fid,kid,cycle]; a generator
    checkpoint takes one folder of real images (--data DIR).
    """
    from ganforge.evaluation import evaluate_checkpoint

    if more_data and not data:
        raise click.UsageError("give the test folders with --data A_DIR B_DIR")
    folders = [*data, *more_data]
    if not folders:
        raise click.UsageError("missing --data A_DIR B_DIR (or --data DIR for a generator)")
    if batch_size < 1:
        raise click.UsageError("--batch-size must be at least 1")
    if max_images < 0:
        raise click.UsageError("--max-images must be >= 0 (0: all)")
    if not 0 <= seed < 2**63:
        raise click.UsageError("--seed must be in [0, 2**63)")
    result = evaluate_checkpoint(
        checkpoint,
        folders,
        get_registry(),
        metrics,
        weights=weights,
        device=device,
        batch_size=batch_size,
        max_images=max_images,
        seed=seed,
    )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    console = Console()
    for direction, values in result.results.items():
        source, target = result.routes.get(direction, ("", ""))
        title = f"{direction} ({source} -> {target}, {result.images.get(source, 0)} images)"
        if not source:
            title = f"{direction} ({', '.join(f'{n} {k}' for k, n in result.images.items())} images)"
        table = Table(title=title, title_justify="left")
        table.add_column("metric", style="bold cyan")
        table.add_column("value", justify="right")
        for key, value in values.items():
            table.add_row(key, f"{value:.4f}")
        console.print(table)


# -- report ----------------------------------------------------------------------------------


@cli.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    default=None,
    help="HTML file to write (default: RUN_DIR/report.html).",
)
def report_command(run_dir: str, out: str | None) -> None:
    """Write a self-contained HTML page about a run: recipe, curves, metrics, samples, environment."""
    from ganforge.report import write_report

    path = write_report(Path(run_dir), Path(out) if out else None)
    click.echo(f"wrote {path}", err=True)


@cli.command("bench")
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
    from ganforge.bench import baseline as baseline_of
    from ganforge.bench import run_bench
    from ganforge.recipe import Recipe

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


# -- export and convert ------------------------------------------------------------------------


@cli.command("export")
@click.argument("checkpoint", type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["safetensors", "onnx"]),
    default="safetensors",
    show_default=True,
    help="safetensors: for translate/sample/eval and ganforge.load; onnx: for onnxruntime and others.",
)
@click.option(
    "--direction",
    "directions",
    multiple=True,
    help="A direction to include (repeatable; default: every one, or the first for onnx).",
)
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="The file to write.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def export_command(
    checkpoint: str, fmt: str, directions: tuple[str, ...], dtype: str, out: str, force: bool
) -> None:
    """Write a run's inference network(s) alone, with everything needed to rebuild them.

    CHECKPOINT is a run folder, a checkpoint or an exported file. The safetensors file works
    wherever a run does (translate, sample, eval, ganforge.load).
    """
    from ganforge.export import export_checkpoint, size_text

    path, info = export_checkpoint(
        checkpoint, out, get_registry(), format=fmt, directions=directions, dtype=dtype, force=force
    )
    nets = ", ".join(
        f"{n} ({s['component']}, {s['parameters']:,} parameters)" for n, s in info["networks"].items()
    )
    what = ", ".join(info["directions"]) or "samples from noise"
    click.echo(f"wrote {path} ({size_text(path.stat().st_size)}, {fmt} {dtype}): {what}; {nets}", err=True)


@cli.command("convert")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--from",
    "source",
    required=True,
    help="The project the .pth file comes from: a converter (ganforge list converters).",
)
@click.option(
    "--direction",
    default=None,
    help="The direction the file translates, or the one to keep of a file holding both "
    "(default: what the converter reads from the file).",
)
@click.option(
    "--image-size", type=int, default=None, help="The training image size (default: inferred, else 256)."
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a network option the file cannot tell (e.g. variance='biased' for U-GAT-IT).",
)
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="The .safetensors file.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def convert_command(
    file: str,
    source: str,
    direction: str | None,
    image_size: int | None,
    overrides: tuple[str, ...],
    out: str,
    force: bool,
) -> None:
    """Turn a generator .pth of another project (see 'ganforge list converters') into an export.

    Only plain state dicts are read (torch.load with weights_only=True).
    """
    from ganforge.convert import convert_file
    from ganforge.export import size_text

    path, info = convert_file(
        file,
        source,
        out,
        get_registry(),
        direction=direction,
        image_size=image_size,
        overrides=list(overrides),
        force=force,
    )
    nets = ", ".join(
        f"{n} ({s['component']} ngf={s['options'].get('ngf')} blocks={s['options'].get('blocks')})"
        for n, s in info["networks"].items()
    )
    click.echo(
        f"wrote {path} ({size_text(path.stat().st_size)}): {', '.join(info['directions'])}; {nets}", err=True
    )


_PLUGIN_COMMANDS = {"loaded": False}


def _add_plugin_commands() -> None:
    """Every loaded plugin's ``register_commands`` (for a command that is not built in)."""
    _PLUGIN_COMMANDS["loaded"] = True
    _register_commands(get_host().pm.hook.register_commands.get_hookimpls())


def _add_third_party_commands() -> None:
    """The cheap path of the top-level help: only third-party plugin modules are imported."""
    from ganforge.plugins import command_hookimpls

    _PLUGIN_COMMANDS["loaded"] = True
    _register_commands(command_hookimpls())


def _register_commands(impls: list[Any]) -> None:
    builtin = set(cli.commands)
    for impl in impls:
        group = _BuiltinsKept(builtin)
        try:
            impl.function(cli=group)
        except Exception as exc:  # a plugin's command must not break the CLI
            from ganforge.plugins import mark_failed

            print(
                f"warning: plugin '{impl.plugin_name}' failed to add commands: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
            mark_failed(impl.plugin_name, f"register_commands: {type(exc).__name__}: {exc}")
            continue
        for name, command in group.commands.items():
            if name not in builtin:
                cli.add_command(command, name)


class _BuiltinsKept(click.Group):
    """What a plugin's ``register_commands`` gets as ``cli``: a group whose commands are then
    added to the real one, except any that would replace a built-in command."""

    def __init__(self, builtin: set[str]) -> None:
        super().__init__("ganforge")
        self.builtin = builtin


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="ganforge")
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, quietly
        click.echo("interrupted", err=True)
        sys.exit(130)


def _plural(kind: str) -> str:
    from ganforge.registry import plural

    return plural(kind).replace("_", " ")


# -- data ------------------------------------------------------------------------------------
# Self-contained and torch-free (`ganforge data list` starts in well under a second): it uses a
# plugin host that loads ganforge's data_sources plugin and third-party plugins only.


@cli.group("data")
def data_group() -> None:
    """Download the datasets the recipes read (docs/data.md)."""


@data_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON array.")
def data_list_command(as_json: bool) -> None:
    """List the downloadable datasets: source, checksum origin, image counts, where installed."""
    from rich.markup import escape

    from ganforge import download
    from ganforge.plugins import get_source_host

    host = get_source_host()
    for info in host.failures():
        click.echo(f"warning: plugin '{info.name}' skipped: {info.error}", err=True)
    rows = []
    for source in download.sources(host.registry).values():
        folder = download.dataset_dir(source.dataset)
        marker = download.read_marker(folder)
        installed = str(folder) if marker is not None else ""
        rows.append(
            {
                **source.to_json(),
                "path": str(folder),
                "installed": installed,
                "installed_from": (marker or {}).get("source"),
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=escape(f"datasets (data root: {download.data_root_text()})"), title_justify="left")
    for col in ("name", "folder", "images", "verified by", "installed"):
        table.add_column(col, overflow="fold")
    for row in rows:
        counts = ", ".join(f"{k or '.'} {v:,}" for k, v in row["counts"].items())
        where = row["installed"] or "-"
        if row["installed_from"] and row["installed_from"] != row["name"]:
            where += f" (from {row['installed_from']})"
        cells = (row["name"], row["dataset"], counts, _checksum_origin(row), where)
        table.add_row(*(escape(cell) for cell in cells))  # a path may hold "[...]": not markup
    Console().print(table)


def _checksum_origin(row: dict[str, Any]) -> str:
    """``sha256 (github.com/owner/repo)``: where the checksums were published, short (full URLs: --json)."""
    import urllib.parse

    origins = []
    for file in row["files"]:
        if not file["sha256"]:
            return row["checksum"]  # the no-checksum sentence
        parsed = urllib.parse.urlsplit(file["checksum_from"])
        parts = parsed.path.strip("/").split("/")
        repo = "/".join(parts[:3] if parts[0] in ("datasets", "spaces") else parts[:2])
        origin = f"{parsed.netloc}/{repo}".strip("/") or "the source declaration"
        if origin not in origins:
            origins.append(origin)
    return "sha256 (" + ", ".join(origins) + ")"


@data_group.command("get")
@click.argument("name")
@click.option(
    "--to",
    "to",
    type=click.Path(file_okay=False),
    default=None,
    help="The dataset folder (default: DATA_ROOT/FOLDER, see `ganforge data list`).",
)
@click.option(
    "--force", is_flag=True, help="Download again and replace a folder an earlier `data get` wrote."
)
def data_get_command(name: str, to: str | None, force: bool) -> None:
    """Download, verify and unpack dataset NAME where the recipes find it."""
    from ganforge import download
    from ganforge.plugins import get_source_host

    source = download.get_source(get_source_host().registry, name)
    result = download.get_dataset(source, to, force=force)
    counts = ", ".join(f"{k or '.'} {v:,}" for k, v in result.marker.get("counts", {}).items())
    if result.already:
        click.echo(
            f"{source.dataset} is already in {result.path} (from source '{result.marker.get('source')}': "
            f"{counts}); nothing to do (--force downloads it again)",
            err=True,
        )
    else:
        swapped = (result.marker.get("orientation") or {}).get("swapped")
        note = "A and B were swapped in the source: fixed" if swapped else source.notes
        note = f"; {note}" if note else ""
        click.echo(f"{source.dataset} is ready in {result.path} ({counts}{note})", err=True)


# -- demo (self-contained: Gradio is imported only when the command runs) -------------------


@cli.command("demo")
@click.argument("checkpoint", type=click.Path())
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind (the default: this machine only)."
)
@click.option("--port", type=int, default=7860, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--max-pixels",
    type=int,
    default=100_000_000,
    show_default=True,
    help="Refuse photos larger than this many pixels (decompression bombs included).",
)
@click.option(
    "--examples",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of example photos (default: inputs cut from the run's latest sample grid).",
)
@click.option(
    "--export-space",
    type=click.Path(file_okay=False),
    default=None,
    help="Write app.py, requirements.txt, README.md and the model for a Hugging Face Space; don't serve.",
)
@click.option(
    "--requirement",
    default=None,
    help="With --export-space: the pip line that installs ganforge there (default: ganforge[demo]==VERSION).",
)
def demo_command(
    checkpoint: str,
    host: str,
    port: int,
    device: str,
    max_pixels: int,
    examples: str | None,
    export_space: str | None,
    requirement: str | None,
) -> None:
    """Try CHECKPOINT (a run folder or file) in a local web page: photos in, translations out."""
    from ganforge import demo

    if max_pixels < 1:
        raise GanforgeError(f"--max-pixels must be >= 1, got {max_pixels}")
    registry = get_registry()
    files = demo.example_files(examples) if examples else None
    if export_space:
        written = demo.export_space(checkpoint, export_space, registry, files, max_pixels, requirement)
        click.echo(
            f"wrote {len(written)} files to {export_space}: {', '.join(p.name for p in written[:4])}",
            err=True,
        )
        return
    demo._gradio()  # a missing extra fails before the model loads
    model = demo.DemoModel(checkpoint, registry, device, max_pixels)
    page = demo.build_demo(model, files if files is not None else model.sample_examples())
    click.echo(f"ganforge demo of {model.file} on http://{host}:{port} (Ctrl-C stops it)", err=True)
    demo.launch(page, host, port)
