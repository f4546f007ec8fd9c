"""The ``wandb`` callback in offline mode, read back from the run's own files."""

from __future__ import annotations

import json
import struct

import pytest
from conftest import RECIPES, TINY, no_callbacks, sets

pytest.importorskip("wandb", reason="the wandb extra is not installed")
from wandb.proto import wandb_internal_pb2  # noqa: E402

BLOCK = 32768  # the .wandb file is a LevelDB-style log: 32 KiB blocks of 7-byte-headed chunks


def records(path) -> list:
    """Every ``Record`` protobuf of an offline run's ``run-ID.wandb`` transaction log."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    out, pending, pos = [], b"", 7  # the file header: magic, 0xBEE1, version
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        length, kind = struct.unpack_from("<HB", data, pos + 4)
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0:
            break
        pending += chunk
        if kind in (1, 4):  # FULL or LAST
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
    return out


def history(run_dir) -> tuple[dict[int, dict], set[str], dict]:
    """({step: logged values}, W&B run ids, the config) over every offline run folder of ``run_dir``."""
    steps: dict[int, dict] = {}
    ids, config = set(), {}
    for log in sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb")):
        for record in records(log):
            kind = record.WhichOneof("record_type")
            if kind == "run":  # the run record carries the config given to wandb.init
                ids.add(record.run.run_id)
                config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
            elif kind == "config":
                config.update({item.key: json.loads(item.value_json) for item in record.config.update})
            elif kind == "history":
                row = {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
                steps.setdefault(int(row.pop("_step")), {}).update(row)
    return steps, ids, config


def test_wandb_offline_run_logs_scalars_images_config_and_resumes(tmp_path, selfie_root, cli):
    # Through the real CLI, in fresh processes: wandb's service keeps process-wide state.
    env = {
        var: str(tmp_path / var.lower()) for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR")
    }
    env.update(WANDB_MODE="offline", WANDB_SILENT="true")
    run = tmp_path / "run"
    base = [*TINY, f"data.root={json.dumps(str(selfie_root))}", *no_callbacks("samples", "checkpoint")]
    base += ["callbacks.samples.every=2", "callbacks.checkpoint.every=100", "callbacks.wandb.project='t'"]
    recipe = str(RECIPES / "cyclegan_selfie2anime.toml")
    first = cli(
        "run", recipe, *sets(*base, "train.max_steps=4"), "--out", str(run), "--device", "cpu", env=env
    )
    assert first.returncode == 0, first.stderr
    again = cli(
        "run", recipe, *sets(*base, "train.max_steps=6"), "--resume", str(run), "--device", "cpu", env=env
    )
    assert again.returncode == 0, again.stderr

    steps, ids, config = history(run)
    assert sorted(steps) == [2, 4, 6]
    assert len(ids) == 1  # the resumed run is the same W&B run
    for step, row in steps.items():
        assert {"loss/G_AB", "loss/D_B", "loss/cycle_A", "lr/g", "lr/d", "throughput/steps_per_s"} <= set(row)
        assert row["lr/g"] == pytest.approx(2e-4) and row["loss/G_AB"] > 0
        assert row["samples/_type"] == "image-file" and row["samples/caption"] == f"step {step}"
        assert (row["samples/width"], row["samples/height"]) == (6 * 34 + 2, 2 * 34 + 2)
    assert config["objective"]["name"] == "cyclegan" and config["generator"]["ngf"] == 8
    assert config["train"]["max_steps"] == 6  # the resumed run's recipe
    for row in steps.values():  # the grid files, in one of the two offline run folders
        assert len(list(run.glob(f"wandb/offline-run-*/files/{row['samples/path']}"))) == 1
