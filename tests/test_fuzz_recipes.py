"""A seeded fuzzer over recipes and ``--set`` values: no traceback, no hang, no invalid value accepted.

Each case mutates a bundled recipe: a ``--set`` of an existing key (deep in roles and callbacks
too) to a wrong type, an out-of-range, huge, NaN or infinite number, a unicode or NUL string, a
list, a table or a date; unknown and deep keys; another component's name; or the TOML file
itself mutated (bytes flipped, cut, inserted) or replaced by binary. Resolving each case must
either raise ``GanforgeError`` or give values that the oracle accepts: every option within its
declared type and range, and every value the oracle knows to be invalid refused. A sample of
accepted cases is built and trained one step on tiny data, and a sample of refused ones goes
through the real CLI. ``GANFORGE_FUZZ_CASES`` and ``GANFORGE_FUZZ_SEED`` change the amount and
the seed.
"""

from __future__ import annotations

import datetime
import math
import os
import random
import signal
import typing
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pytest
from conftest import NO_CALLBACKS, RECIPES, TINY, run_cli

from ganforge import GanforgeError
from ganforge.plugins import get_registry
from ganforge.recipe import Recipe, parse_value
from ganforge.registry import Range, coerce

CASES = int(os.environ.get("GANFORGE_FUZZ_CASES", "2000"))
SEED = int(os.environ.get("GANFORGE_FUZZ_SEED", "20251201"))
CASE_SECONDS = 10  # a resolve takes milliseconds: this long is a hang
BASES = sorted(RECIPES.glob("*.toml"))

# Option names whose values can only be >= 0, whatever component declares them: the oracle's
# own list, independent of the declared ranges it checks.
NON_NEGATIVE = {
    "ngf", "ndf", "blocks", "n_layers", "layers", "image_size", "load_size", "latent_dim",
    "in_channels", "out_channels", "nc", "num_patches", "kernel_size", "lr", "eps",
    "weight_decay", "momentum", "size", "count", "every", "keep", "holdout", "max_images",
    "batch_size", "epochs", "max_steps", "log_every", "lambda_cycle", "lambda_identity",
    "d_loss_weight", "gradient_penalty", "r1_gamma", "lambda_gp", "init_gain", "ema",
    "n_critic", "sample_count", "color_jitter", "blur", "seed", "split_seed", "sample_seed",
    "constant_epochs", "decay_epochs", "min_factor", "cycle_epochs", "step_epochs", "gamma",
    "warmup_steps", "feather", "threshold", "crop_margin",
}  # fmt: skip


@contextmanager
def time_limit(seconds: int):
    """Fail a case that runs longer than ``seconds`` (a hang), from the main thread's alarm."""

    def expire(signum, frame):
        raise TimeoutError(f"case ran over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- values ------------------------------------------------------------------------------------

HUGE_INTS = [2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, 1477064801642886061968311638]
STRANGE_FLOATS = [math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0, 1e-300]
STRINGS = [
    "",
    " ",
    "x",
    "ünïcødé ✓",
    "名前",
    "\u202e\u200b",
    "a" * 5000,
    "../../etc/passwd",
    "\x00",
    "nul\x00x",
]


def random_value(rng: random.Random) -> tuple[Any, str]:
    """(a value, its class) for a ``--set``: the class tells the oracle what it is."""
    kind = rng.choice(
        ["int", "int", "huge", "negative", "float", "strange", "bool", "str", "list", "table", "date"]
    )
    if kind == "int":
        return rng.choice([0, 1, 2, 3, 4, 7, 8, 16, 31, 32, 64, 100, 1000]), "int"
    if kind == "huge":
        return rng.choice(HUGE_INTS), "huge"
    if kind == "negative":
        return rng.choice([-1, -2, -32, -(2**63), -1e-9, -0.5, -1e9]), "negative"
    if kind == "float":
        return rng.choice([0.0, 0.5, 1.0, 0.999, 1e-4, 2.5, 1e6]), "float"
    if kind == "strange":
        return rng.choice(STRANGE_FLOATS), "strange"
    if kind == "bool":
        return rng.choice([True, False]), "bool"
    if kind == "str":
        return rng.choice(STRINGS), "str"
    if kind == "list":
        return rng.choice([[], [1], [0.5, 0.999], [0.5], [1, 2, 3], [[1]], ["a", 1], [math.nan, 0.9]]), "list"
    if kind == "table":
        return rng.choice([{}, {"name": "x"}, {"a": 1}, {"name": "adam", "lr": -1}]), "table"
    return datetime.date(1979, 5, 27), "date"


def toml_literal(value: Any) -> str:
    """The ``--set`` spelling of a value (TOML; strings with escapes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in value)
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, datetime.date):
        return value.isoformat()
    raise TypeError(value)


# -- keys --------------------------------------------------------------------------------------


def key_paths(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf key path of a resolved recipe (``("optim", "g", "lr")``)."""
    out = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out += key_paths(value, (*prefix, key))
        else:
            out.append((*prefix, key))
    return out


_resolved_cache: dict[Path, dict[str, Any]] = {}


def resolved_of(path: Path) -> dict[str, Any]:
    if path not in _resolved_cache:
        _resolved_cache[path] = Recipe.load(path).resolve(get_registry())
    return _resolved_cache[path]


# -- cases -------------------------------------------------------------------------------------


def make_case(rng: random.Random, tmp: Path, index: int) -> dict[str, Any]:
    """One fuzz case: a recipe file, ``--set`` items, and what the oracle knows of it."""
    base = rng.choice(BASES)
    kind = rng.choices(["set", "set", "set", "set", "unknown", "rename", "toml", "binary"], k=1)[0]
    case: dict[str, Any] = {"base": base, "path": base, "sets": [], "kind": kind, "known_invalid": None}
    registry = get_registry()
    resolved = resolved_of(base)
    if kind == "set":
        path = rng.choice(key_paths(resolved))
        value, value_class = random_value(rng)
        case["sets"] = [f"{'.'.join(path)}={toml_literal(value)}"]
        case["target"], case["value"], case["value_class"] = path, value, value_class
        case["known_invalid"] = known_invalid(path, value, value_class, base_type(resolved, path))
    elif kind == "unknown":
        head = rng.choice([*resolved, "nonsense", "Train", "trian", "objectiv", "ünï"])
        depth = rng.choice([1, 2, 3, 6, 40])
        tail = [rng.choice(["x", "zz", "lr_", "ngf2", "名", "name2"]) for _ in range(depth)]
        value = rng.choice(["1", "nan", '"s"', "[1]"])
        case["sets"] = [f"{'.'.join([head, *tail])}={value}"]
        case["known_invalid"] = "an unknown or too deep key"
    elif kind == "rename":
        section = rng.choice([k for k in resolved.specs if not k.startswith(("callbacks.", "metrics."))])
        kind_name = resolved.specs[section].component.kind
        case["sets"] = [f"{section}.name={toml_literal(rng.choice(registry.names(kind_name)))}"]
    elif kind == "toml":
        data = bytearray(base.read_bytes())
        for _ in range(rng.randint(1, 6)):
            op, at = rng.choice(["flip", "cut", "insert", "truncate"]), rng.randrange(max(1, len(data)))
            if not data:
                data = bytearray(b"[")
            if op == "flip":
                data[at] = rng.randrange(256)
            elif op == "cut":
                del data[at : at + rng.randint(1, 40)]
            elif op == "insert":
                data[at:at] = rng.choice([b"=", b"[", b"]", b'"', b"\n[x]\n", b"nan", b"1e400", b"\xff\xfe"])
            else:
                del data[at:]
        case["path"] = tmp / f"case-{index}.toml"
        case["path"].write_bytes(bytes(data))
    else:
        case["path"] = tmp / f"case-{index}.toml"
        case["path"].write_bytes(rng.randbytes(rng.randint(0, 2000)))
    return case


def base_type(resolved: Any, path: tuple[str, ...]) -> Any:
    """The plain type (``int``, ``float``...) of the option at ``path``, ranges stripped."""
    from ganforge.recipe import train_params

    if path[0] == "train":
        params = {p.name: p for p in train_params()}
    else:
        spec = resolved.specs.get(".".join(path[:-1]))
        if spec is None:
            return None
        params = {p.name: p for p in get_registry().options(spec.component)}
    param = params.get(path[-1])
    annotation = param.annotation if param is not None else None
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def known_invalid(path: tuple[str, ...], value: Any, value_class: str, kind: Any = None) -> str | None:
    """Why the oracle knows ``value`` is invalid for ``path`` (of plain type ``kind``), or None."""
    key = path[-1]
    if key == "name":
        return None  # a component name: valid when it names one
    if value_class == "strange" and isinstance(value, float) and not math.isfinite(value):
        return "not finite"
    if kind is int and value_class == "huge" and value >= 2**64:
        return "an int beyond 64 bits"
    if kind is float and isinstance(value, int | float) and abs(value) > 3.5e38:
        return "beyond float32"
    if value_class == "negative" and key in NON_NEGATIVE:
        return "negative"
    if value_class == "date":
        return "a date"
    if kind is str and isinstance(value, str) and "\x00" in value:
        return "a NUL character"
    return None


# -- the oracle ----------------------------------------------------------------------------------


def check_ranges(resolved: Any) -> None:
    """Every resolved option coerces again under its declared type and range."""
    registry = get_registry()
    for spec in resolved.specs.values():
        for param in registry.options(spec.component):
            if param.name in spec.options:
                coerce(spec.options[param.name], param.annotation)  # raises if out of range


def check_known_sizes(resolved: Any) -> None:
    """Cross-section facts the oracle knows: the networks can take the data's image size."""
    data = resolved["data"]
    size = data.get("image_size")
    if resolved["generator"].get("name") in ("resnet", "pixelshuffle", "ugatit"):
        assert size % 4 == 0 and size >= 4, f"a ResNet encoder accepted image_size {size}"
    if resolved["objective"]["name"] == "dcgan" and resolved["generator"]["name"] == "dcgan":
        assert resolved["generator"]["image_size"] == size, "dcgan generator size differs from the data's"
    if resolved.get("discriminator", {}).get("name") == "dcgan":
        assert resolved["discriminator"]["image_size"] <= size


def run_case(case: dict[str, Any]) -> tuple[str, Any]:
    """('refused', message) or ('accepted', resolved); anything else propagates."""
    with time_limit(CASE_SECONDS):
        try:
            resolved = Recipe.load(case["path"], case["sets"]).resolve(get_registry())
        except GanforgeError as exc:
            message = str(exc)
            assert message and "\n" not in message.strip(), f"not one line: {message!r}"
            return "refused", message
    return "accepted", resolved


def generate(n: int, seed: int, tmp: Path) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [make_case(rng, tmp, i) for i in range(n)]


def test_fuzzed_recipes_resolve_or_refuse(tmp_path):
    outcomes = {"refused": 0, "accepted": 0}
    failures = []
    for i, case in enumerate(generate(CASES, SEED, tmp_path)):
        try:
            outcome, result = run_case(case)
            outcomes[outcome] += 1
            if outcome == "accepted":
                assert case["known_invalid"] is None, f"accepted an invalid value ({case['known_invalid']})"
                check_ranges(result)
                check_known_sizes(result)
        except Exception as exc:  # a traceback, a hang or an accepted invalid value
            failures.append(
                f"case {i} ({case['kind']} {case['base'].name} {case['sets']}): {type(exc).__name__}: {exc}"
            )
    assert not failures, f"{len(failures)} of {CASES} cases failed:\n" + "\n".join(failures[:20])
    # The fuzzer reaches both sides: refusals and accepted recipes.
    assert outcomes["refused"] > CASES // 4 and outcomes["accepted"] > CASES // 20, outcomes


def test_values_parse_as_fuzzed():
    # The fuzzer's --set spelling parses back to the value it meant (so the oracle judges the right value).
    for value in [*HUGE_INTS, 1e-300, -0.0, *STRINGS, [0.5, 0.999], {"a": 1}, datetime.date(1979, 5, 27)]:
        assert parse_value(toml_literal(value)) == value
    assert math.isnan(parse_value("nan")) and parse_value("-inf") == -math.inf


def test_declared_ranges_cover_nested_values():
    # Ranges inside tuples and lists are checked element by element.
    betas = tuple[
        Annotated[float, Range(0.0, 1.0, max_open=True)], Annotated[float, Range(0.0, 1.0, max_open=True)]
    ]
    assert coerce([0.5, 0.999], betas) == (0.5, 0.999)
    with pytest.raises(ValueError, match="< 1"):
        coerce([0.5, 1.0], betas)
    with pytest.raises(ValueError, match=">= 1"):
        coerce([1, 0], list[Annotated[int, Range(1)]])
    assert typing.get_origin(betas) is tuple


# -- accepted cases train, refused ones are one line through the real CLI --------------------------


def _typed(rng: random.Random, current: Any) -> Any:
    """A plausible value of the same type as ``current`` (what a user would try)."""
    if isinstance(current, bool):
        return not current
    if isinstance(current, int):
        return rng.choice([0, 1, 2, 3, 5, 8, 9, 16, 33, 64, current * 2, max(0, current - 1)])
    if isinstance(current, float):
        return rng.choice([0.0, 1e-6, 0.3, 0.5, 0.99, 1.0, 3.0, 50.0, current * 10])
    if isinstance(current, list) and current and isinstance(current[0], float):
        return [rng.choice([0.0, 0.5, 0.9, 0.99, 1.0]) for _ in current]
    if isinstance(current, str):
        return rng.choice([current, "", "x", "名前"])
    return current


TRAIN_CASES = int(os.environ.get("GANFORGE_FUZZ_TRAIN_CASES", "10"))


def test_accepted_fuzzed_recipes_train_a_step(selfie_root, anime_root, tmp_path):
    """What resolves also builds and trains: no value passes validation and then crashes."""
    from conftest import DCGAN_TINY

    from ganforge.training.trainer import Trainer

    rng = random.Random(SEED + 1)
    registry = get_registry()
    bases = [
        RECIPES / "cyclegan_selfie2anime.toml",
        RECIPES / "cyclegan_s3_v2.toml",
        RECIPES / "dcgan_anime.toml",
    ]
    trained = 0
    failures = []
    for i in range(TRAIN_CASES * 4):
        if trained >= TRAIN_CASES:
            break
        base = rng.choice(bases)
        dcgan = "dcgan" in base.name
        tiny = [*(DCGAN_TINY if dcgan else TINY), f"data.root={anime_root if dcgan else selfie_root}"]
        tiny += ["train.max_steps=1", "train.device='cpu'", "train.num_workers=0", *NO_CALLBACKS]
        resolved = resolved_of(base)
        paths = [
            p for p in key_paths(resolved) if p[0] not in ("baseline", "description", "callbacks", "train")
        ]
        path = rng.choice([p for p in paths if p[-1] not in ("root", "a", "b")])
        node: Any = resolved
        for key in path:
            node = node[key]
        if path[-1] == "name":
            kind = resolved.specs[".".join(path[:-1])].component.kind
            value = rng.choice(registry.names(kind))
        else:
            value = _typed(rng, node)
        item = f"{'.'.join(path)}={toml_literal(value)}"
        try:
            with time_limit(120):
                recipe = Recipe.load(base, [*tiny, item]).resolve(registry)
                Trainer(recipe, tmp_path / f"run-{i}", registry).fit()
            trained += 1
        except GanforgeError as exc:
            assert "\n" not in str(exc)
        except Exception as exc:
            failures.append(f"{base.name} --set {item}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)
    assert trained >= TRAIN_CASES // 2


def test_fuzzed_cases_through_the_real_cli(tmp_path):
    """A seeded sample of refused cases through ``ganforge run``: exit 2, one line, no traceback."""
    refused = []
    for case in generate(200, SEED + 2, tmp_path):
        if run_case(case)[0] == "refused" and case["kind"] in ("set", "unknown", "toml", "binary"):
            refused.append(case)
    rng = random.Random(SEED + 3)
    kinds = {c["kind"] for c in refused}
    sample = [rng.choice([c for c in refused if c["kind"] == k]) for k in sorted(kinds)]
    sample += rng.sample(refused, 5 - len(sample)) if len(sample) < 5 else []
    for case in sample:  # one at a time: each is a process start (~3 s)
        args = ["run", str(case["path"]), *[a for item in case["sets"] for a in ("--set", item)]]
        result = run_cli(*args, "--device", "cpu", "--out", str(tmp_path / "never"), timeout=120)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (case["sets"], result.stderr[-2000:])
        assert "Traceback" not in result.stderr and lines[-1].startswith("error:"), result.stderr[-2000:]
    assert not (tmp_path / "never").exists()  # refused before anything was written
