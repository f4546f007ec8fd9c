"""Checkpoint I/O: nested state round trips, atomic writes, rotation, damaged files."""

from __future__ import annotations

import json

import pytest
import torch

from ganforge import GanforgeError
from ganforge import checkpoint as ckpt


def _state():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    opt.step()
    return {
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "step": 7,
        "pair": (1, "x"),
        "bf16": torch.randn(3, dtype=torch.bfloat16),
        "nested": {"empty": {}, "none": None},
    }


def test_round_trip_nested_state(tmp_path):
    state = _state()
    path = ckpt.save(tmp_path / "a.safetensors", state, {"recipe": {"x": 1}, "step": 7})
    loaded, meta = ckpt.load(path)
    assert meta == {"recipe": {"x": 1}, "step": 7}
    assert (
        loaded["step"] == 7 and loaded["pair"] == (1, "x") and loaded["nested"] == {"empty": {}, "none": None}
    )
    for k, v in state["model"].items():
        assert torch.equal(loaded["model"][k], v)
    assert loaded["bf16"].dtype == torch.bfloat16 and torch.equal(loaded["bf16"], state["bf16"])
    # optimizer state keeps its integer keys and tuples, and loads into a fresh optimizer
    assert set(loaded["opt"]["state"]) == {0, 1, 2, 3}
    assert loaded["opt"]["param_groups"][0]["betas"] == (0.5, 0.999)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    torch.optim.Adam(model.parameters()).load_state_dict(loaded["opt"])


def test_file_is_plain_safetensors_with_json_metadata(tmp_path):
    from safetensors import safe_open

    path = ckpt.save(tmp_path / "a.safetensors", {"w": torch.ones(2)}, {"step": 1})
    with safe_open(str(path), "pt") as f:
        header = f.metadata()
        assert header["format"] == ckpt.FORMAT
        assert json.loads(header["meta"]) == {"step": 1}
        assert list(f.keys()) == ["w"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_file_is_a_clear_error(tmp_path, damage):
    path = ckpt.save(tmp_path / "a.safetensors", _state(), {"step": 1})
    data = path.read_bytes()
    path.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"\x00garbage" * 10, "empty": b""}[damage]
    )
    with pytest.raises(GanforgeError, match="is truncated or corrupt"):
        ckpt.load(path)


def test_not_a_ganforge_checkpoint(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.ones(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(GanforgeError, match="not a ganforge checkpoint"):
        ckpt.load(tmp_path / "other.safetensors")


def test_rotation_keeps_last_k_and_latest(tmp_path):
    folder = ckpt.CheckpointDir(tmp_path, keep=2)
    for step in (1, 2, 3, 4):
        folder.save(step, {"w": torch.full((2,), float(step))}, {"step": step})
    assert [p.name for p in folder.steps()] == ["step-00000003.safetensors", "step-00000004.safetensors"]
    assert (tmp_path / "latest").read_text().strip() == "step-00000004.safetensors"
    assert ckpt.resolve(tmp_path) == tmp_path / "step-00000004.safetensors"
    assert ckpt.resolve(tmp_path.parent / tmp_path.name) == folder.latest()
    best = folder.steps()[0]
    folder.mark_best(best)
    assert ckpt.load(tmp_path / "best.safetensors")[1]["step"] == 3


def test_failed_write_leaves_previous_checkpoint(tmp_path, monkeypatch):
    folder = ckpt.CheckpointDir(tmp_path, keep=3)
    first = folder.save(1, {"w": torch.ones(2)}, {"step": 1})

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", crash)
    with pytest.raises(OSError):
        folder.save(2, {"w": torch.zeros(2)}, {"step": 2})
    assert folder.latest() == first
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
    assert ckpt.load(first)[1]["step"] == 1


def test_resolve_errors(tmp_path):
    with pytest.raises(GanforgeError, match="not found"):
        ckpt.resolve(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanforgeError, match="no checkpoint found"):
        ckpt.resolve(tmp_path / "empty")


def test_loading_never_unpickles(tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (print, ("unpickled!",))

    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(GanforgeError):
        ckpt.load(evil)
