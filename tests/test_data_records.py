"""`ganforge data get` for tar archives, md5 checksums and binary image records (the CIFAR-10 source).

A tiny archive in CIFAR-10's binary layout (``cifar-10-batches-bin/data_batch_1..5.bin``,
``test_batch.bin``: records of 1 label byte and 3,072 channel-major pixel bytes;
``batches.meta.txt``) is built here and served from 127.0.0.1 by test_data_get.py's server; the
bundled source is used with the test archive's checksums and counts swapped in. Hostile tars get
the zip limits: paths, links, member sizes, the total, the compression ratio, damage, streaming.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import random
import tarfile
import tracemalloc

import numpy as np
import pytest
import test_data_get as base
from click.testing import CliRunner
from conftest import NO_CALLBACKS, RECIPES
from PIL import Image
from test_data_get import leftovers, server_path, use_sources

import ganforge_plugins.apps.data.sources as bundled
from ganforge.cli import cli
from ganforge.errors import GanforgeError
from ganforge_plugins.apps.data import download
from ganforge_plugins.apps.data.download import MD5_ONLY, DataSource, ImageRecords, RemoteFile, get_dataset

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
BATCHES = "cifar-10-batches-bin"
PER_BATCH, TEST = 2, 3  # records per training batch file (5 files: one per class pair), test records


@pytest.fixture
def server():
    srv = base.FileServer()
    yield srv
    srv.stop()


@pytest.fixture
def root(server, tmp_path, monkeypatch):
    monkeypatch.setenv(download.MIRROR_ENV, server.url)
    monkeypatch.setenv(download.DATA_ROOT_ENV, str(tmp_path / "data"))
    monkeypatch.setattr(download, "RETRY_DELAY_S", 0.0)
    return tmp_path / "data"


def records(labels: list[int], seed: int) -> tuple[bytes, list[np.ndarray]]:
    """CIFAR binary records for ``labels``; also each image as [H, W, 3] uint8 (what a PNG must hold)."""
    rng = np.random.default_rng(seed)
    data, images = b"", []
    for label in labels:
        planes = rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)  # red, green, blue planes
        data += bytes([label]) + planes.tobytes()
        images.append(planes.transpose(1, 2, 0))
    return data, images


def tar_gz(members: dict[str, bytes], links: dict[str, str] | None = None, mode: str = "w:gz") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return out.getvalue()


def cifar_members(**replace: bytes) -> tuple[dict[str, bytes], dict[str, list]]:
    """The archive's members, and the expected images by split: (class name, file name, pixels)."""
    members: dict[str, bytes] = {f"{BATCHES}/readme.html": b"<html>not an image</html>"}
    expected: dict[str, list] = {"train": [], "test": []}
    for i in range(1, 6):
        labels = [2 * (i - 1), 2 * (i - 1) + 1]  # every class once over the five files
        data, images = records(labels, seed=i)
        members[f"{BATCHES}/data_batch_{i}.bin"] = data
        expected["train"] += [
            (CLASSES[c], f"data_batch_{i}-{k:05d}.png", im) for k, (c, im) in enumerate(zip(labels, images))
        ]
    labels = [3, 3, 9]
    data, images = records(labels, seed=9)
    members[f"{BATCHES}/test_batch.bin"] = data
    expected["test"] = [
        (CLASSES[c], f"test_batch-{k:05d}.png", im) for k, (c, im) in enumerate(zip(labels, images))
    ]
    members[f"{BATCHES}/batches.meta.txt"] = (
        "\n".join(CLASSES) + "\n\n"
    ).encode()  # as the original: a blank line
    members.update(replace)
    return members, expected


def cifar_source(server, archive: bytes, **changes) -> DataSource:
    """The bundled source with this archive's sha256 and md5 and the tiny counts."""
    server.files[server_path(bundled.CIFAR10.files[0])] = archive
    file = dataclasses.replace(
        bundled.CIFAR10.files[0],
        sha256=hashlib.sha256(archive).hexdigest(),
        md5=hashlib.md5(archive).hexdigest(),
        size=0,
    )
    return dataclasses.replace(
        bundled.CIFAR10, files=(file,), counts={"train": 5 * PER_BATCH, "test": TEST}, **changes
    )


def one_line(err: pytest.ExceptionInfo) -> str:
    assert "\n" not in str(err.value)
    return str(err.value)


# -- the CIFAR-10 source -------------------------------------------------------------------------


def test_cifar10_installs_one_folder_per_class_with_every_pixel_exact(root, server):
    members, expected = cifar_members()
    result = get_dataset(cifar_source(server, tar_gz(members)))
    assert result.path == root / "cifar10"
    for split, images in expected.items():
        assert sorted(p.name for p in (result.path / split).iterdir()) == sorted({c for c, _, _ in images})
        for cls, name, pixels in images:
            png = Image.open(result.path / split / cls / name)
            assert png.mode == "RGB" and np.array_equal(np.asarray(png), pixels)
    marker = result.marker
    assert marker["counts"] == {"train": 10, "test": 3}
    assert marker["files"][0]["verified"] == "sha256 and md5" and marker["files"][0]["md5"]
    assert sorted(p.name for p in result.path.iterdir()) == [".ganforge-dataset.json", "test", "train"]
    assert leftovers(root.parent / "data")[0] == "cifar10"  # no staging folder left


def test_the_cifar10_recipe_trains_on_it_with_no_root(root, server, tmp_path):
    from ganforge.plugins import get_registry
    from ganforge.recipe import Recipe
    from ganforge.training.trainer import Trainer

    members, _ = cifar_members()
    get_dataset(cifar_source(server, tar_gz(members)))
    small = ["generator.ch=8", "discriminator.ch=8", "generator.latent_dim=16", "train.batch_size=4"]
    items = [*small, "train.max_steps=1", "train.num_workers=0", "train.device='cpu'", *NO_CALLBACKS]
    trainer = Trainer(
        Recipe.load(RECIPES / "cgan_cifar10.toml", items).resolve(get_registry()),
        tmp_path / "run",
        get_registry(),
    )
    assert trainer.classes == CLASSES and len(trainer.dataset) == 10
    assert trainer.fit()["step"] == 1


def test_an_md5_mismatch_is_one_line_and_leaves_nothing(root, server):
    members, _ = cifar_members()
    source = cifar_source(server, tar_gz(members))
    wrong = dataclasses.replace(source.files[0], md5="0" * 32)
    with pytest.raises(GanforgeError) as err:
        get_dataset(dataclasses.replace(source, files=(wrong,)))
    message = one_line(err)
    assert "cifar-10-binary.tar.gz: md5 mismatch: got " in message and f"expected {'0' * 32}" in message
    assert "(published in https://www.cs.toronto.edu/~kriz/cifar.html); the download was removed" in message
    assert leftovers(root) == []


def test_a_source_with_only_an_md5_says_so(root, server, monkeypatch, tmp_path):
    members, _ = cifar_members()
    archive = tar_gz(members)
    source = cifar_source(server, archive)
    md5_only = dataclasses.replace(
        source, files=(dataclasses.replace(source.files[0], sha256="", checksum_from=""),)
    )
    assert md5_only.checksum == f"md5 published in https://www.cs.toronto.edu/~kriz/cifar.html ({MD5_ONLY})"
    local = tmp_path / "mine.tar.gz"  # the user's own copy: verified by its md5 and read in place
    local.write_bytes(archive)
    result = get_dataset(md5_only, local=[local])
    assert result.marker["files"][0]["verified"] == "md5" and local.read_bytes() == archive
    use_sources(monkeypatch, md5_only)
    monkeypatch.setenv("COLUMNS", "200")
    table = CliRunner().invoke(cli, ["data", "list"]).output
    assert "md5 only (www.cs.toronto.edu/~kriz/cifar.html)" in table
    rows = json.loads(CliRunner().invoke(cli, ["data", "list", "--json"]).stdout)
    assert (
        rows[0]["files"][0]["md5"] == hashlib.md5(archive).hexdigest()
        and rows[0]["checksum"] == md5_only.checksum
    )


def test_data_list_shows_both_checksums_of_the_bundled_source(monkeypatch):
    use_sources(monkeypatch, bundled.CIFAR10)
    monkeypatch.setenv("COLUMNS", "220")
    table = CliRunner().invoke(cli, ["data", "list"]).output
    assert "sha256 (github.com/tensorflow/datasets) + md5 (www.cs.toronto.edu/~kriz/cifar.html)" in table
    assert "train 50,000, test 10,000" in table


def test_the_bundled_declaration():
    file = bundled.CIFAR10.files[0]
    assert (
        file.path == "~kriz/cifar-10-binary.tar.gz"
        and bundled.CIFAR10.base_url == "https://www.cs.toronto.edu/"
    )
    assert (
        file.md5 == "c32a1d4ab5d03f1284b67883e8d87530"
        and file.md5_from == "https://www.cs.toronto.edu/~kriz/cifar.html"
    )
    assert len(file.sha256) == 64 and "tensorflow/datasets/blob/333639b" in file.checksum_from
    assert file.size == 170052171 and file.format == "tar" and file.records.size == 3073
    assert sorted(file.layout.values()) == ["test"] + ["train"] * 5
    assert bundled.CIFAR10.counts == {"train": 50000, "test": 10000}
    with pytest.raises(GanforgeError, match="image records are read from a tar, not a zip"):
        RemoteFile(path="x.zip", format="zip", records=ImageRecords(classes="names.txt"))


# -- records that do not fit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "replace, why",
    [
        (
            {f"{BATCHES}/test_batch.bin": bytes(3073 * 2 + 5)},
            "6,151 bytes is not a whole number of 3,073-byte records",
        ),
        ({f"{BATCHES}/test_batch.bin": bytes([12]) + bytes(3072)}, "test_batch.bin record 0: class 12, but"),
        (
            {f"{BATCHES}/batches.meta.txt": b"airplane\n../up\n"},
            "class name '../up' is not a plain folder name",
        ),
        ({f"{BATCHES}/batches.meta.txt": b"cat\ncat\n"}, "a class name is listed twice"),
        ({f"{BATCHES}/batches.meta.txt": b"\xff\xfe"}, "the class names are not UTF-8 text"),
    ],
)
def test_records_that_do_not_fit_are_one_line_and_install_nothing(root, server, replace, why):
    members, _ = cifar_members(**replace)
    with pytest.raises(GanforgeError) as err:
        get_dataset(cifar_source(server, tar_gz(members)))
    assert why in one_line(err) and "nothing was installed" in str(err.value)
    assert leftovers(root) == []


def test_a_missing_record_file_or_class_list_is_one_line(root, server):
    members, _ = cifar_members()
    cases = {
        f"{BATCHES}/data_batch_3.bin": "no record file(s) cifar-10-batches-bin/data_batch_3.bin",
        f"{BATCHES}/batches.meta.txt": "no member 'cifar-10-batches-bin/batches.meta.txt'",
    }
    for missing, why in cases.items():
        partial = {k: v for k, v in members.items() if k != missing}
        with pytest.raises(GanforgeError) as err:
            get_dataset(cifar_source(server, tar_gz(partial)))
        assert why in one_line(err)
    assert leftovers(root) == []


# -- hostile tars: the zip limits ------------------------------------------------------------------

PLAIN = "/plain/faces.tar.gz"


def plain_tar(server, archive: bytes, count: int = 1, **changes) -> DataSource:
    """A source of images in a tar, with no checksum (structure and counts check it)."""
    server.files[PLAIN] = archive
    source = DataSource(
        name="plain-tar",
        description="A test source of a tar of images.",
        base_url="https://example.invalid/",
        files=(RemoteFile(path=PLAIN.lstrip("/"), format="tar", layout={"faces": ""}),),
        counts={"": count},
    )
    return dataclasses.replace(source, **changes)


def _png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
        out, "PNG"
    )
    return out.getvalue()


def test_a_tar_of_images_unpacks_like_a_zip(root, server):
    archive = tar_gz(
        {"faces/a.png": _png(0), "faces/sub/b.png": _png(1), "faces/notes.txt": b"x", "other/c.png": _png(2)}
    )
    result = get_dataset(plain_tar(server, archive, count=2))
    assert sorted(p.name for p in result.path.iterdir() if p.is_file()) == [
        ".ganforge-dataset.json",
        "a.png",
        "b.png",
    ]
    assert (result.path / "a.png").read_bytes() == _png(0)


@pytest.mark.parametrize(
    "members, links, why",
    [
        ({"faces/../../evil.png": b"x"}, {}, "unsafe member 'faces/../../evil.png' (absolute or '..' path)"),
        ({"/abs/evil.png": b"x"}, {}, "unsafe member '/abs/evil.png'"),
        ({"faces/a.png": b"x"}, {"faces/link.png": "/etc/passwd"}, "member 'faces/link.png' is a link"),
        ({"faces/" + "n" * 300 + ".png": b"x"}, {}, "has a file name of 304 bytes"),
    ],
    ids=["dotdot", "absolute", "symlink", "long-name"],
)
def test_unsafe_members_reject_the_whole_tar(root, server, members, links, why):
    with pytest.raises(GanforgeError) as err:
        get_dataset(plain_tar(server, tar_gz(members, links)))
    assert why in one_line(err) and leftovers(root) == []


def test_a_member_over_the_limit_is_refused_from_its_header(root, server):
    big = random.Random(0).randbytes(2 << 20)  # incompressible
    with pytest.raises(GanforgeError) as err:
        get_dataset(plain_tar(server, tar_gz({"faces/big.png": big}), max_member_bytes=1 << 20))
    assert one_line(err).startswith("faces.tar.gz: member 'faces/big.png' declares 2.1 MB, over 1.0 MB")
    assert "max_member_bytes" in str(err.value) and leftovers(root) == []


def test_a_gzip_bomb_is_refused_before_it_is_inflated(root, server, tmp_path):
    # 64 MiB of zeros in one member, about 64 kB gzipped: refused from its header by the ratio
    archive = tar_gz({"faces/flat.bmp": bytes(64 << 20)})
    assert len(archive) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(GanforgeError) as err:
            get_dataset(plain_tar(server, archive))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "faces.tar.gz: its members declare 67.1 MB from " in one_line(err) and "over 100x" in str(
        err.value
    )
    assert peak < 16 << 20 and leftovers(root) == []
    # every member counts (each is inflated to reach the next), not only the images
    with pytest.raises(GanforgeError) as err:
        get_dataset(plain_tar(server, tar_gz({"skipped/data.bin": bytes(64 << 20)})))
    assert "its members declare 67.1 MB" in one_line(err)
    # and the total: members that together pass max_unpacked_bytes (the user's own file: a
    # download this size stops at the same limit before it is unpacked)
    two = tmp_path / "two.tar.gz"
    two.write_bytes(
        tar_gz(
            {
                "faces/a.png": random.Random(1).randbytes(3 << 20),
                "faces/b.png": random.Random(2).randbytes(3 << 20),
            }
        )
    )
    with pytest.raises(GanforgeError) as err:
        get_dataset(plain_tar(server, b"", count=2, max_unpacked_bytes=5 << 20), local=[two])
    assert one_line(err).startswith(f"{two}: its members declare 6.3 MB, over 5.2 MB left")
    assert leftovers(root) == []


def test_a_damaged_or_foreign_archive_is_one_line(root, server):
    archive = tar_gz({"faces/a.png": random.Random(3).randbytes(300_000)})
    with pytest.raises(GanforgeError) as err:
        get_dataset(plain_tar(server, archive[: len(archive) // 2]))
    assert one_line(err).startswith("faces.tar.gz") and "damaged" in str(err.value)
    with pytest.raises(GanforgeError) as err:
        get_dataset(plain_tar(server, gzip.compress(b"not a tar at all" * 100)))
    assert one_line(err) == "faces.tar.gz: not a tar archive"
    assert leftovers(root) == []


def test_members_stream_to_disk(server, tmp_path):
    big = random.Random(4).randbytes(6 << 20)
    path = tmp_path / "big.tar"
    path.write_bytes(tar_gz({"faces/big.png": big}, mode="w"))  # plain tar: no ratio concern
    dest = tmp_path / "out"
    dest.mkdir()
    source = plain_tar(server, b"")
    tracemalloc.start()
    try:
        download._unpack_tar(source.files[0], path, dest, download._Budget(source))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (dest / "big.png").read_bytes() == big and peak < 4 << 20
    assert sorted(p.name for p in dest.iterdir()) == ["big.png"]
