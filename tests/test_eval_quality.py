"""Quality during training (the ``eval`` callback's FID/KID, best checkpoint, resume), per-direction
and per-class numbers of ``ganforge eval``, the report's best-and-final table and the quality
benchmark's plumbing. A 6-d toy feature extractor stands in for Inception (speed); the metrics
are the real FID and KID code on its features."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import NO_CALLBACKS, RECIPES, REPO, TINY
from PIL import Image

from ganforge import checkpoint as ckpt
from ganforge import hookimpl
from ganforge.errors import GanforgeError
from ganforge.recipe import Recipe
from ganforge.training.trainer import Trainer
from ganforge_plugins.apps.eval.callback import Evaluation, normalise_best
from ganforge_plugins.apps.eval.evaluation import evaluate_checkpoint, mean_over
from ganforge_plugins.apps.eval.fid_kid import FID, KID
from ganforge_plugins.apps.report.report import build_report
from ganforge_plugins.callbacks.tensorboard import tagged_scalars

# -- a toy feature extractor and FID/KID on it ------------------------------------------------------


class MeanColour:
    """Per-channel means and standard deviations of an image: 6 features."""

    dim = 6

    def __call__(self, images):
        return torch.cat([images.mean(dim=(2, 3)), images.std(dim=(2, 3))], 1)


class ToyFID(FID):
    """FID on the toy features."""

    def __init__(self, extractor: str = "mean-colour", weights: str = "", eps: float = 1e-6) -> None:
        super().__init__(extractor, weights, eps)


class ToyKID(KID):
    """KID on the toy features."""

    def __init__(self, extractor: str = "mean-colour", weights: str = "") -> None:
        super().__init__(extractor, weights, subsets=10)


TOY = types.SimpleNamespace(
    register_feature_extractors=hookimpl(specname="register_feature_extractors")(
        lambda register: register("mean-colour", MeanColour)
    ),
    register_metrics=hookimpl(specname="register_metrics")(
        lambda register: (register("toy-fid", ToyFID), register("toy-kid", ToyKID))
    ),
)

# The class-conditional objective of tests/test_conditions.py (a third party's, test only).
sys.path.insert(0, str(Path(__file__).parent))
from test_conditions import PLUGIN as CGAN_PLUGIN  # noqa: E402
from test_conditions import RECIPE as CGAN_RECIPE  # noqa: E402


def _cgan_module() -> types.ModuleType:
    module = types.ModuleType("tiny_cgan_for_eval")
    exec(compile(textwrap.dedent(CGAN_PLUGIN), "tiny_cgan_for_eval", "exec"), module.__dict__)
    return module


@pytest.fixture(scope="module")
def registry():
    """The bundled plugins plus the toy metrics and the tiny class-conditional GAN."""
    from ganforge.plugins import PluginHost

    host = PluginHost()
    host.load_entry_points()
    host.register_module(TOY, "toy-metrics")
    host.register_module(_cgan_module(), "tiny-cgan")
    host.collect()
    return host.registry


def _train(registry, recipe: Path | str, out: Path, *items: str, resume: Path | None = None) -> Trainer:
    source = Recipe.load(recipe, list(items)) if resume is None else None
    if resume is not None:
        source = Recipe.from_saved(ckpt.read_run_meta(ckpt.resolve(resume))["recipe"], "saved", list(items))
    trainer = Trainer(source.resolve(registry), out, registry)
    if resume is not None:
        trainer.resume(resume)
    trainer.fit()
    return trainer


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


EVAL = 'metrics = ["toy-fid", "toy-kid", "cycle"], count = 3, best = "kid"'


def _cyclegan(selfie_root: Path, *items: str) -> list[str]:
    return [
        *TINY,
        "data.holdout=3",
        f"data.root={json.dumps(str(selfie_root))}",
        "train.device='cpu'",
        *NO_CALLBACKS,
        "callbacks.metrics-log.enabled=true",
        *items,
    ]


@pytest.fixture(scope="module")
def cyclegan_run(registry, selfie_root, tmp_path_factory):
    """A tiny CycleGAN: 4 steps, FID/KID/cycle every 2 steps, best by the mean KID over directions."""
    out = tmp_path_factory.mktemp("quality") / "run"
    items = _cyclegan(selfie_root, "train.max_steps=4", f"callbacks.eval={{every = 2, {EVAL}}}")
    _train(registry, RECIPES / "cyclegan_selfie2anime.toml", out, *items)
    return out


def test_the_callback_logs_fid_kid_per_direction_and_their_mean(cyclegan_run):
    evals = [r for r in _records(cyclegan_run) if "eval/a2b/fid" in r]
    assert [r["step"] for r in evals] == [2, 4]
    for r in evals:
        for group in ("a2b", "b2a"):
            assert {f"eval/{group}/{k}" for k in ("fid", "kid_x100", "kid_x100_std", "cycle_l1")} <= set(r)
        for key in ("fid", "kid_x100", "cycle_l1"):
            assert r[f"eval/mean/{key}"] == pytest.approx((r[f"eval/a2b/{key}"] + r[f"eval/b2a/{key}"]) / 2)
        assert "eval/mean/kid_x100_std" not in r  # a mean of subset spreads is no spread
        assert r["eval/protocol"] == "clean-fid"


def test_the_best_checkpoint_is_the_best_evaluated_step_and_its_state_says_so(cyclegan_run):
    evals = {r["step"]: r for r in _records(cyclegan_run) if "eval/mean/kid_x100" in r}
    best_step = min(evals, key=lambda s: evals[s]["eval/mean/kid_x100"])
    assert evals[best_step]["eval/best"] == "mean/kid_x100"  # the record that chose it
    state, meta = ckpt.load(cyclegan_run / "checkpoints" / "best.safetensors")
    assert meta["step"] == best_step
    saved = state["callbacks"]["eval"]
    assert saved["best_step"] == best_step and saved["best_key"] == "eval/mean/kid_x100"
    assert saved["best_value"] == pytest.approx(evals[best_step]["eval/mean/kid_x100"])
    # The last checkpoint, written before the end-of-training evaluation, was written again
    # with the best of that evaluation: a resume from it compares against the right value.
    latest, _ = ckpt.load(ckpt.resolve(cyclegan_run))
    assert latest["callbacks"]["eval"]["best_value"] == pytest.approx(saved["best_value"])
    assert {p.name for p in (cyclegan_run / "checkpoints").iterdir()} >= {"best.safetensors", "latest"}


def test_a_resumed_run_keeps_its_best_and_compares_against_it(registry, cyclegan_run, tmp_path):
    out = tmp_path / "resumed"
    _train(registry, "", out, "train.max_steps=8", resume=cyclegan_run)
    records = _records(cyclegan_run) + _records(out)
    evals = {r["step"]: r["eval/mean/kid_x100"] for r in records if "eval/mean/kid_x100" in r}
    assert sorted(evals) == [2, 4, 6, 8]
    best_step = min(evals, key=evals.get)
    state, _ = ckpt.load(ckpt.resolve(out))
    assert state["callbacks"]["eval"]["best_step"] == best_step  # over both sessions
    assert state["callbacks"]["eval"]["best_value"] == pytest.approx(evals[best_step])
    marked = out / "checkpoints" / "best.safetensors"
    assert marked.is_file() == (best_step > 4)  # a new best only if the resumed part beat the first
    if marked.is_file():
        assert ckpt.read_meta(marked)["step"] == best_step


def test_the_report_shows_best_and_final_side_by_side(cyclegan_run):
    page = build_report(cyclegan_run)
    evals = {r["step"]: r for r in _records(cyclegan_run) if "eval/mean/kid_x100" in r}
    best_step = ckpt.read_meta(cyclegan_run / "checkpoints" / "best.safetensors")["step"]
    section = page.split('<section id="quality">', 1)[1].split("</section>", 1)[0]
    assert f"best: step {best_step}" in section and "checkpoints/best.safetensors" in section
    assert "final: step 4" in section and "checkpoints/step-00000004.safetensors (the latest)" in section
    row = section.split("<td>mean/kid_x100 &#9733;</td>", 1)[1].split("</tr>", 1)[0]
    best, final = (float(v) for v in re.findall(r"<td class='num'>([^<]+)</td>", row))
    assert best == pytest.approx(evals[best_step]["eval/mean/kid_x100"], rel=1e-3)
    assert final == pytest.approx(evals[4]["eval/mean/kid_x100"], rel=1e-3)
    assert 'href="#quality"' in page and "FID/KID protocol: clean-fid" in section


def test_tensorboard_gets_the_eval_values():
    trainer = types.SimpleNamespace(
        engine=types.SimpleNamespace(learning_rates=lambda: {"g": 1.0}), throughput={}
    )
    values = tagged_scalars(
        trainer, {"eval/a2b/fid": 3.0, "eval/mean/kid_x100": 1.5, "eval/class/cat/fid": 2.0}
    )
    assert values == {"eval/a2b/fid": 3.0, "eval/mean/kid_x100": 1.5, "eval/class/cat/fid": 2.0}


# -- the best checkpoint, unit by unit (a stand-in trainer) ---------------------------------------------


class _Checkpoints:
    def __init__(self, root: Path):
        self.root, self.saved, self.best = root, [], []

    def latest(self):
        return self.saved[-1] if self.saved else None

    def mark_best(self, path):
        self.best.append(int(path.stem.split("-")[1]))


class _Trainer:
    """What the callback uses of a trainer: a step, checkpoints, events; values come from ``scores``."""

    is_main, world_size = True, 1

    def __init__(self, tmp: Path, callback: Evaluation):
        self.step, self.checkpoints, self.callback, self.logged = 0, _Checkpoints(tmp), callback, []
        self.runtime = types.SimpleNamespace(device=torch.device("cpu"))

    def save_checkpoint(self):
        path = Path(f"step-{self.step:08d}.safetensors")
        self.checkpoints.saved.append((path, json.loads(json.dumps(self.callback.state_dict()))))
        return path

    def emit(self, event, step, values):
        self.logged.append((event, step, values))


def _session(tmp: Path, callback: Evaluation, values: dict[int, dict[str, float]]) -> _Trainer:
    trainer = _Trainer(tmp, callback)
    callback._metrics, callback._holdout = {}, {}
    for step, scalars in values.items():
        trainer.step = step
        callback.score = lambda _t, s=scalars: dict(s)  # noqa: B023
        callback.evaluate(trainer)
    return trainer


@pytest.mark.parametrize(
    "best, mode, values, marked",
    [
        ("kid", "auto", [3.0, 2.0, 2.5, 1.0], [1, 2, 4]),
        ("a2b/cycle_ssim", "auto", [0.3, 0.2, 0.4, 0.1], [1, 3]),  # higher is better
        ("kid", "max", [3.0, 2.0, 4.0, float("nan")], [1, 3]),  # NaN is never a best
    ],
)
def test_best_follows_the_value_and_its_direction(tmp_path, best, mode, values, marked):
    cb = Evaluation(best=best, mode=mode)
    key = "eval/mean/kid_x100" if best == "kid" else f"eval/{best}"
    trainer = _session(tmp_path, cb, {i: {key: v, "eval/a2b/other": 0.0} for i, v in enumerate(values, 1)})
    assert trainer.checkpoints.best == marked
    # each best's checkpoint holds that best in its state
    for path, state in trainer.checkpoints.saved:
        assert state["best_step"] == int(path.stem.split("-")[1]) and state["best_key"] == key
    infos = [v for e, _, v in trainer.logged if e == "on_log_info"]
    assert sum("eval/best" in i for i in infos) == len(marked)


def test_short_names_resolve_to_the_mean_or_the_only_direction():
    assert normalise_best("eval/a2b/kid") == "a2b/kid_x100" and normalise_best("fid") == "fid"
    both = {"eval/a2b/kid_x100": 1.0, "eval/b2a/kid_x100": 3.0, "eval/mean/kid_x100": 2.0}
    assert Evaluation(best="kid").resolve_best(both) == "eval/mean/kid_x100"
    assert Evaluation(best="b2a/kid").resolve_best(both) == "eval/b2a/kid_x100"
    assert Evaluation(best="kid").resolve_best({"eval/a2b/kid_x100": 1.0}) == "eval/a2b/kid_x100"  # CUT
    assert Evaluation(best="fid").resolve_best({"eval/generated/fid": 1.0, "eval/x/fid": 2.0}) == (
        "eval/generated/fid"
    )
    assert Evaluation(best="kid").resolve_best({"eval/a2b/fid": 1.0}) == ""
    assert mean_over({"a": {"fid": 1.0, "kid_x100_std": 1.0}, "b": {"fid": 3.0, "x": 1.0}}) == {"fid": 2.0}


def test_a_resumed_callback_never_replaces_a_better_best_with_a_worse_one(tmp_path, capsys):
    first = Evaluation(best="kid")
    trainer = _session(tmp_path, first, {2: {"eval/a2b/kid_x100": 3.0}, 4: {"eval/a2b/kid_x100": 1.0}})
    assert trainer.checkpoints.best == [2, 4]
    state = trainer.checkpoints.saved[-1][1]  # what the last checkpoint holds
    resumed = Evaluation(best="kid")
    resumed.load_state_dict(state)
    assert (resumed.best_value, resumed.best_step) == (1.0, 4)
    later = _session(tmp_path, resumed, {6: {"eval/a2b/kid_x100": 2.0}, 8: {"eval/a2b/kid_x100": 1.5}})
    assert later.checkpoints.best == []  # worse than the resumed best: best.safetensors stays
    better = _session(tmp_path, resumed, {10: {"eval/a2b/kid_x100": 0.5}})
    assert better.checkpoints.best == [10]
    # Chosen another way (another value, direction or protocol): the best starts afresh, said once.
    other = Evaluation(best="fid")
    other.load_state_dict(state)
    assert other.best_value is None and "starts afresh" in capsys.readouterr().err
    legacy = Evaluation(best="a2b/kid")  # a checkpoint from before 'best' was saved: its key
    legacy.load_state_dict({"best_key": "eval/a2b/kid_x100", "best_value": 1.0, "best_step": 4})
    assert (legacy.best_value, legacy.best_step) == (1.0, 4)


def test_an_unknown_best_warns_once_and_the_run_goes_on(tmp_path, capsys):
    cb = Evaluation(best="a2b/psnr")
    trainer = _session(tmp_path, cb, {1: {"eval/a2b/kid_x100": 1.0}, 2: {"eval/a2b/kid_x100": 0.5}})
    err = capsys.readouterr().err
    assert err.count("best = 'a2b/psnr' is not one of the evaluated values (a2b/kid_x100)") == 1
    assert trainer.checkpoints.best == [] and cb.best == ""


def test_on_cpu_false_does_nothing_on_the_cpu_and_says_so(tmp_path, capsys):
    cb = Evaluation(metrics=("fid", "kid"), best="kid", on_cpu=False)
    trainer = _Trainer(tmp_path, cb)
    cb.on_train_start(trainer)  # would build the Inception network if it were on
    assert not cb.active and cb.evaluate(trainer) == {} and trainer.logged == []
    assert "off on the CPU (on_cpu = false)" in capsys.readouterr().err


def test_the_gpu_recipes_evaluate_fid_and_kid_on_a_held_out_split(registry):
    names = [f"{n}_selfie2anime" for n in ("cyclegan", "cut", "fastcut", "ugatit_light", "uvcgan2")]
    for name in [*names, "r3gan_anime64", "r3gan_cifar10"]:  # the R3GAN ones: per class for CIFAR-10
        resolved = Recipe.load(RECIPES / f"{name}.toml").resolve(registry, measure=False)
        table = resolved["callbacks"]["eval"]
        assert table["on_cpu"] is False and {"fid", "kid"} <= set(table["metrics"]) and table["best"] == "kid"
        assert resolved["data"]["holdout"] >= table["count"] >= 100


# -- class-conditional models: per class and the mean ---------------------------------------------------


@pytest.fixture(scope="module")
def classes_root(tmp_path_factory) -> Path:
    """Three classes of 6 small images each, each class its own colour."""
    root = tmp_path_factory.mktemp("classes")
    rng = np.random.default_rng(0)
    for i, name in enumerate(("cat", "dog", "fox")):
        (root / name).mkdir()
        for j in range(6):
            pixels = rng.integers(0, 255, (20, 20, 3)) // 4 + 60 * i
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{j}.png")
    return root


@pytest.fixture(scope="module")
def cgan_run(registry, classes_root, tmp_path_factory):
    base = tmp_path_factory.mktemp("cgan")
    recipe = base / "tiny_cgan.toml"
    recipe.write_text(CGAN_RECIPE)
    out = base / "run"
    items = [
        f"data.root={json.dumps(str(classes_root))}",
        "data.holdout=2",
        *NO_CALLBACKS,
        "callbacks.metrics-log.enabled=true",
        'callbacks.eval={every = 0, metrics = ["toy-fid", "toy-kid"], count = 2, best = "fid"}',
    ]
    _train(registry, recipe, out, *items)
    return out


def test_the_callback_scores_a_conditional_generator_per_class(cgan_run):
    (record,) = [r for r in _records(cgan_run) if "eval/mean/fid" in r]
    assert record["step"] == 3  # every = 0: at the end only
    for name in ("cat", "dog", "fox"):
        assert {f"eval/class/{name}/fid", f"eval/class/{name}/kid_x100"} <= set(record)
    per_class = [record[f"eval/class/{n}/fid"] for n in ("cat", "dog", "fox")]
    assert record["eval/mean/fid"] == pytest.approx(sum(per_class) / 3)
    assert "eval/generated/fid" in record  # all classes pooled
    assert record["eval/best"] == "mean/fid"
    assert ckpt.read_meta(cgan_run / "checkpoints" / "best.safetensors")["step"] == 3


def test_eval_scores_a_conditional_checkpoint_per_class_from_class_folders(
    registry, cgan_run, classes_root, tmp_path
):
    logs: list[str] = []
    data = tmp_path / "test"
    for name in ("cat", "dog"):  # fox has no folder; "wolf" is no class of the model
        shutil.copytree(classes_root / name, data / name)
    shutil.copytree(classes_root / "fox", data / "wolf")
    result = evaluate_checkpoint(
        cgan_run, [str(data)], registry, "toy-fid,toy-kid", device="cpu", log=logs.append
    )
    out = result.to_json()
    assert set(out["results"]) == {"generated", "class/cat", "class/dog", "mean"}
    assert out["classes"] == {"cat": 6, "dog": 6} and out["images"] == {"real": 12, "generated": 12}
    mean = out["results"]["mean"]
    assert mean["fid"] == pytest.approx(
        (out["results"]["class/cat"]["fid"] + out["results"]["class/dog"]["fid"]) / 2
    )
    text = "\n".join(logs)
    assert "no folder for class(es) fox" in text and "folder(s) wolf" in text
    with pytest.raises(GanforgeError, match="one sub-folder per class, named as its classes"):
        evaluate_checkpoint(
            cgan_run, [str(classes_root / "cat")], registry, "toy-fid", device="cpu", log=logs.append
        )


def test_eval_reports_both_directions_and_their_mean(registry, cyclegan_run, selfie_root, monkeypatch):
    from click.testing import CliRunner

    from ganforge.cli import cli
    from ganforge_plugins.apps.eval import commands

    monkeypatch.setattr(commands, "get_registry", lambda: registry)
    args = ["eval", str(cyclegan_run), "--data", str(selfie_root / "trainA"), str(selfie_root / "trainB")]
    result = CliRunner().invoke(
        cli, [*args, "--metrics", "toy-fid,toy-kid", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)["results"]
    assert set(results) == {"a2b", "b2a", "mean"}
    assert results["mean"]["fid"] == pytest.approx((results["a2b"]["fid"] + results["b2a"]["fid"]) / 2)
    table = CliRunner().invoke(cli, [*args, "--metrics", "toy-kid"], catch_exceptions=False)
    assert "mean over 2 directions (a2b, b2a)" in table.stdout


# -- the quality benchmark ----------------------------------------------------------------------------


def _quality():
    spec = importlib.util.spec_from_file_location("quality_bench", REPO / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["quality_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_the_presets_name_recipes_and_options_that_exist(registry):
    q = _quality()
    assert [m.name for m in q.PRESETS["cpu"].methods] == [
        "cyclegan",
        "cyclegan-sn-ema",
        "cut",
        "fastcut",
        "ugatit-light",
    ]
    for preset in q.PRESETS.values():
        for method in preset.methods:
            if not (REPO / method.recipe).is_file():
                continue  # a method still being added: the benchmark skips it with a note
            for size in method.sizes or preset.sizes:
                base = Recipe.load(REPO / method.recipe)
                items = [*q._size_items(base, size), *preset.common, *method.set]
                Recipe.load(REPO / method.recipe, items).resolve(registry, measure=False)  # valid


def test_the_benchmark_trains_scores_and_writes_its_table_and_page(
    registry, selfie_root, tmp_path, monkeypatch
):
    q = _quality()
    root = tmp_path / "data"
    shutil.copytree(selfie_root, root / "selfie2anime")
    tiny = [i for i in TINY if not i.startswith(("data.image_size", "data.load_size", "data.holdout"))]
    argv = ["--images", "2", "--holdout", "3", "--data-root", str(root), "--out", str(tmp_path / "q")]
    argv += ["--device", "cpu", "--threads", "0", "--sizes", "32"]
    for item in tiny:
        argv += ["--set", item]
    args = q.parse_args(argv)
    monkeypatch.setenv("GANFORGE_DATA_ROOT", str(root))  # what main() does with --data-root

    def bench():
        made = q.Bench(args)
        made.registry, made.metrics = registry, {"fid": ToyFID(), "kid": ToyKID()}
        return made

    first, out = bench(), tmp_path / "q"
    out.mkdir()
    row = first.run(q.Method("cyclegan", "recipes/cyclegan_selfie2anime.toml"), 32, out)
    missing = first.run(q.Method("uvcgan2", "recipes/not_here_selfie2anime.toml"), 32, out)
    assert row.status == "ok" and row.steps == 2 and row.images_seen == 2
    assert row.images == {"A": 3, "B": 3} and "held out of trainA/trainB: 3 per domain" in row.real
    assert set(row.results) == {"a2b", "b2a", "mean"} and row.results["a2b"]["fid"] > 0
    assert (out / row.grid).is_file() and missing.status == "skipped" and "does not exist" in missing.note
    (baseline,) = first.baselines.values()  # the held-out A against B, untranslated: what to beat
    assert set(baseline.results) == {"a2b", "b2a", "mean"} and baseline.results["a2b"]["fid"] > 0
    assert baseline.images == {"A": 3, "B": 3}
    meta = {
        "preset": "cpu",
        "budget": "2 images seen per method",
        "protocol": "clean-fid",
        "machine": {},
        "command": "python benchmarks/quality.py",
        "seconds": 1.0,
    }
    table = q.markdown([baseline, row, missing], meta)
    assert "| input unchanged | 32 | - | - | - |" in table
    assert (
        "| cyclegan | 32 | 2 |" in table
        and "generators (M params)" in table
        and "a2b FID" in table
        and "| uvcgan2 | 32 | skipped |" in table
    )
    page = q.html_page([row, missing], meta, out)
    assert page.count("data:image/png;base64,") == 1 and "http" not in page.replace("http-equiv", "")
    # the same settings again: reused, not retrained
    args.reuse = True
    again = bench()
    assert (
        again.run(q.Method("cyclegan", "recipes/cyclegan_selfie2anime.toml"), 32, out).results == row.results
    )
    assert list(again.baselines.values())[0].results == baseline.results


def test_a_resume_copies_the_best_checkpoint_that_a_kill_left_uncopied(cyclegan_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(cyclegan_run, run)
    state, _ = ckpt.load(ckpt.resolve(run))
    best_step = state["callbacks"]["eval"]["best_step"]
    folder = ckpt.CheckpointDir(run / "checkpoints")
    other = next(p for p in folder.steps() if ckpt.step_of(p) != best_step)
    shutil.copy(other, run / "checkpoints" / "best.safetensors")  # as if killed before the copy
    cb = Evaluation(metrics=("toy-kid",), best="kid")
    cb.load_state_dict(state["callbacks"]["eval"])
    cb._restore_best_file(types.SimpleNamespace(checkpoints=folder))
    assert ckpt.read_meta(run / "checkpoints" / "best.safetensors")["step"] == best_step
