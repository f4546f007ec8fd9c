"""The ``ganforge`` command line: the engine's commands list, run, translate and sample.

Other commands come from plugins' ``register_commands`` (the bundled apps too), loaded only when needed;
none replaces a built-in one. torch and the component plugins load inside the commands that need them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ganforge import __version__
from ganforge.errors import GanforgeError


def get_host(warn: bool = False) -> Any:
    """The process-wide plugin host (loads every plugin on first use); ``warn``: report those that failed."""
    from ganforge import plugins

    if warn:
        plugins.warn_failures()
    return plugins.get_host()


EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}
DEVICES = click.Choice(["auto", "cpu", "cuda"])
FOLDER = click.Path(file_okay=False, path_type=Path)


class GanforgeGroup(click.Group):
    """Prints a user error (a file that cannot be written and memory the device lacks are too) as one
    line, exit 2 (3 for a non-finite loss); a bug keeps its traceback. Adds plugin commands on demand."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and not _PLUGIN_COMMANDS["loaded"]:
            _add_plugin_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        if not _PLUGIN_COMMANDS["loaded"]:
            _add_plugin_commands()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GanforgeError as exc:
            message = str(exc).replace("\n", " ")
            click.echo(f"error: {message}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:
            from ganforge.safety import describe_os_error

            click.echo(f"error: {describe_os_error(exc)}", err=True)
            ctx.exit(2)
        except (MemoryError, RuntimeError) as exc:
            from ganforge.registry import describe_exception

            text = str(exc)
            oom = isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            if not (oom or "can't allocate memory" in text or "out of memory" in text.lower()):
                raise
            message = f"out of memory ({describe_exception(exc)}); use smaller sizes or batches"
            click.echo(f"error: {message}", err=True)
            ctx.exit(2)


@click.group(cls=GanforgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ganforge")
def cli() -> None:
    """ganforge: train and use GANs built from plugins."""


@cli.command("list")
@click.argument("kind", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON array.")
@click.option("--plugins", "show_plugins", is_flag=True, help="Show loaded and failed plugins instead.")
@click.option("--kinds", "show_kinds", is_flag=True, help="Show the component kinds and who registered them.")
def list_command(kind: str | None, as_json: bool, show_plugins: bool, show_kinds: bool) -> None:
    """List registered components, grouped by kind (or the plugins, or the kinds)."""
    if show_plugins:
        host = get_host()
        if not _PLUGIN_COMMANDS["loaded"]:
            _add_plugin_commands()  # a plugin whose register_commands fails is listed as failed
        if as_json:
            click.echo(json.dumps([p.to_json() for p in host.plugins], indent=2))
            return
        status = {True: "[green]loaded", False: "[red]failed"}
        rows = [
            (p.name, p.distribution, p.version, status[p.loaded], p.error or ", ".join(p.hooks))
            for p in host.plugins
        ]
        columns = ("plugin", "distribution", "version", "status", "hooks / error")
        _print_table("ganforge plugins", columns, rows, center=True)
        return
    registry = get_host(warn=True).registry
    if show_kinds:
        kinds = [registry.kind(k) for k in registry.kinds()]
        if as_json:
            click.echo(json.dumps([k.to_json() for k in kinds], indent=2))
            return
        rows = [(k.name, k.hook, f"{k.plugin} ({k.distribution})", k.doc) for k in kinds]
        _print_table("component kinds", ("kind", "hook", "plugin", "doc"), rows)
        return
    components = registry.all(kind)
    if as_json:
        click.echo(json.dumps([_component_json(registry, c) for c in components], indent=2))
        return
    from ganforge.registry import plural

    for k in [registry._kind(kind)] if kind else registry.kinds():
        rows = [_component_row(registry, c) for c in components if c.kind == k]
        if rows:
            _print_table(plural(k).replace("_", " "), ("name", "options", "plugin", "doc"), rows)


def _print_table(title: str, columns: tuple[str, ...], rows: list[Any], center: bool = False) -> None:
    table = Table(title=title, title_justify="center" if center else "left")
    for col in columns:
        table.add_column(col, style="bold cyan" if col == "name" else None)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def _component_row(registry: Any, c: Any) -> tuple[str, ...]:
    opts = ", ".join(
        f"{p.name}: {p.type_name}" + ("" if p.required else f" = {p.to_json()['default']!r}")
        for p in c.params
    )
    doc = c.doc + ("\n" + _declaration_summary(registry, c.name) if c.kind == "objective" else "")
    return c.name, escape(opts), f"{c.plugin} ({c.distribution} {c.version})", escape(doc)


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
    c = d.condition
    lines = [
        f"sections: {sections}",
        f"networks: {', '.join(d.networks)}",
        f"optimizers: {optimizers}",
        f"batch: {', '.join(d.batch_keys)}",
        d.directions and f"translates: {', '.join(d.directions)}",
        d.noise and f"generates from noise ({d.noise})",
        c and f"takes a {c.kind} ('{c.batch_key}') in {', '.join(c.networks)}",
        d.paired and f"trains on aligned {' / '.join(d.paired)} pairs",
    ]
    return "\n".join(line for line in lines if line)  # the parts a declaration has


@cli.command("run")
@click.argument("recipe", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help='Override a recipe value (repeatable). Values parse as TOML: 3, 1e-4, true, [1, 2], "s".',
)
@click.option("--out", type=FOLDER, help="Run folder (default: runs/NAME-TIME).")
@click.option("--device", type=DEVICES, help="Where to train (default: the recipe's train.device, auto).")
@click.option("--resume", type=click.Path(), help="Continue a run: its folder or a checkpoint file.")
# 1024 at most: each process is one (and holds a device on CUDA)
@click.option(
    "--nproc", type=click.IntRange(0, 1024), default=0, help="Launch N processes with torchrun (DDP)."
)
def run_command(
    recipe: str | None,
    overrides: tuple[str, ...],
    out: Path | None,
    device: str | None,
    resume: str | None,
    nproc: int,
) -> None:
    """Train from RECIPE (a TOML file), or continue a run with --resume."""
    if nproc > 1 and "LOCAL_RANK" not in os.environ:
        from ganforge.training.distributed import launch

        sys.exit(launch(sys.argv[1:], nproc))
    if recipe is None and resume is None:
        raise click.UsageError("give a RECIPE, or --resume RUN_DIR")
    from ganforge import checkpoint as ckpt  # imports torch: not at start-up (`ganforge data` stays light)
    from ganforge.recipe import Recipe
    from ganforge.safety import ensure_writable_dir
    from ganforge.training import distributed
    from ganforge.training.trainer import Trainer

    registry = get_host(warn=True).registry
    if resume:
        file = ckpt.resolve(resume)
        source = Recipe.from_saved(
            ckpt.read_run_meta(file)["recipe"], f"{file} (saved recipe)", list(overrides)
        )
        if recipe is not None and not Path(recipe).is_file():
            raise GanforgeError(f"recipe {recipe} not found")
    else:
        source = Recipe.load(recipe, list(overrides))
    if device:
        source.set(f"train.device={json.dumps(device)}")
    resolved = source.resolve(registry)

    train = resolved["train"]
    dist = distributed.setup(train["device"], train["precision"], train["channels_last"], train["compile"])
    if resume:
        run_dir = ckpt.resume_run_dir(file, out)
    else:  # rank 0 checks; the other DDP ranks only name the same folder
        run_dir = ckpt.new_run_dir(Path(recipe).stem if recipe else "run", out, check=dist.rank == 0)
    if dist.rank == 0:
        ensure_writable_dir(run_dir, "run folder")  # before any work: read-only, missing rights

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


def load_model(checkpoint: str, device: str) -> Any:
    """The :class:`ganforge.Model` a command works on: a run, a checkpoint or an exported file."""
    from ganforge.model import Model

    return Model.load(checkpoint, device, registry=get_host(warn=True).registry)


@cli.command("translate")
@click.argument("checkpoint", type=click.Path())
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--direction", help="A direction the model translates (default: its first one).")
@click.option("--domain", help="The target domain of a multi-domain model, by name or index.")
@click.option("--out", type=FOLDER, default="translated", show_default=True)
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option("--batch-size", type=int, help="Images per batch (default: 64 on CUDA, 1-8 on CPU).")
@click.option("--compile", is_flag=True, help="Compile the generator: slower start, faster on big folders.")
@click.option(
    "--size",
    type=int,
    help="Square size the model sees (default: the training image size; 0: native, /4 rounded).",
)
def translate_command(checkpoint: str, inputs: tuple[str, ...], device: str, **options: Any) -> None:
    """Translate image files or folders with a trained model; outputs keep the input's size.

    CHECKPOINT is a run folder, a checkpoint or a file written by 'ganforge export'.
    """
    from ganforge.translate import translate_files

    if translate_files(load_model(checkpoint, device), list(inputs), **options):
        sys.exit(2)  # some inputs failed (each was reported)


@cli.command("sample")
@click.argument("checkpoint", type=click.Path())
@click.option("-n", "count", type=int, default=64, show_default=True, help="How many images.")
@click.option(
    "--class",
    "cls",
    help="The class to draw, by name or index (class-conditional models; default: a row per class).",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default="samples.png", show_default=True
)
@click.option("--seed", type=int, help="Noise seed (same seed, same images).")
@click.option("--individual", type=FOLDER, help="Also write each image here.")
@click.option("--interpolate", is_flag=True, help="A latent walk: each row goes between two random points.")
@click.option("--steps", type=int, default=8, show_default=True, help="Images per row with --interpolate.")
@click.option("--device", type=DEVICES, default="auto", show_default=True)
def sample_command(checkpoint: str, device: str, **options: Any) -> None:
    """Generate a grid of samples from a trained generator."""
    from ganforge.sampling import sample_to_files

    paths = sample_to_files(load_model(checkpoint, device), **options)
    click.echo(f"wrote {paths[0]}" + (f" and {len(paths) - 1} images" if len(paths) > 1 else ""), err=True)


_PLUGIN_COMMANDS = {"loaded": False}


def _add_plugin_commands() -> None:
    """The commands of the bundled apps and third-party plugins (their modules only: cheap)."""
    from ganforge.plugins import command_hookimpls, mark_failed

    _PLUGIN_COMMANDS["loaded"] = True
    builtin = set(cli.commands)
    for impl in command_hookimpls():
        group = click.Group("ganforge")  # its commands join cli's, all or nothing, none replacing a built-in
        try:
            impl.function(cli=group)
        except Exception as exc:  # a plugin's command must not break the CLI
            error = f"{type(exc).__name__}: {exc}"
            print(f"warning: plugin '{impl.plugin_name}' failed to add commands: {error}", file=sys.stderr)
            mark_failed(impl.plugin_name, f"register_commands: {error}")
            continue
        for name in group.commands.keys() - builtin:  # click lists commands sorted by name
            cli.add_command(group.commands[name], name)


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="ganforge")
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, quietly
        click.echo("interrupted", err=True)
        sys.exit(130)
