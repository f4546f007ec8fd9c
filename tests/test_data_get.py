"""`ganforge data get` and `data list`: tiny generated archives served from 127.0.0.1.

The archives are built here in each bundled source's own layout (the uvcgan2 zip with A and B
swapped, the Hub parquet files, the flat anime-face zip) from real images where ../shared/data
has them, and the server misbehaves on request: a cut-short transfer, Range ignored, HTTP 500, a
trickle or a stall, an endless body (tests/test_data_hostile.py uses those).
The bundled sources are used with the test archive's checksum and counts swapped in, reached
through GANFORGE_DATA_MIRROR; nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import json
import random
import subprocess
import sys
import threading
import types
import urllib.parse
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import NO_CALLBACKS, RECIPES, REPO, SHARED_DATA, TINY, bare_host
from PIL import Image, ImageDraw, ImageFilter

import ganforge_plugins.apps.data.sources as bundled
from ganforge import hookimpl
from ganforge.cli import cli
from ganforge.errors import GanforgeError
from ganforge_plugins.apps.data import commands as data_commands
from ganforge_plugins.apps.data import download
from ganforge_plugins.apps.data.download import NO_CHECKSUM, DataSource, RemoteFile, get_dataset

TRAIN, TEST = 6, 2  # images per domain in the tiny archives
TINY_COUNTS = {"trainA": TRAIN, "trainB": TRAIN, "testA": TEST, "testB": TEST}


# -- tiny images: real ones where the shared data is, lookalikes elsewhere ----------------------


def _jpeg(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").resize((64, 64), Image.BICUBIC).save(out, "JPEG", quality=90)
    return out.getvalue()


def _photo(seed: int) -> Image.Image:
    """A photo lookalike: smooth shading and sensor noise, no hard lines."""
    r = random.Random(seed)
    shade = Image.linear_gradient("L").resize((64, 64)).rotate(r.uniform(0, 360))
    rgb = Image.merge(
        "RGB", [shade.point(lambda v, k=k: int(v * r.uniform(0.3, 0.9) + 40 * k)) for k in range(3)]
    )
    return Image.blend(rgb, Image.effect_noise((64, 64), 12).convert("RGB"), 0.15).filter(
        ImageFilter.GaussianBlur(1)
    )


def _drawing(seed: int) -> Image.Image:
    """A drawing lookalike: flat fills with dark outlines."""
    r = random.Random(seed)
    img = Image.new("RGB", (64, 64), tuple(r.randrange(150, 256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(5):
        x, y = r.randrange(0, 48), r.randrange(0, 48)
        box = (x, y, x + r.randrange(8, 30), y + r.randrange(8, 30))
        draw.ellipse(box, fill=tuple(r.randrange(256) for _ in range(3)), outline=(0, 0, 0), width=2)
    return img


def _images(kind: str, n: int, offset: int = 0) -> list[bytes]:
    folder = SHARED_DATA / "selfie2anime" / ("trainA" if kind == "selfie" else "trainB")
    if folder.is_dir():
        files = sorted(folder.iterdir())[offset : offset + n]
        return [_jpeg(Image.open(f)) for f in files]
    make = _photo if kind == "selfie" else _drawing
    return [_jpeg(make(offset + i)) for i in range(n)]


@pytest.fixture(scope="module")
def faces() -> dict[str, list[bytes]]:
    return {
        "selfie": _images("selfie", TRAIN + TEST),
        "anime": _images("anime", TRAIN + TEST),
    }


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def uvcgan2_zip(faces: dict[str, list[bytes]]) -> bytes:
    """The uvcgan2/Council-GAN layout: selfie2anime/{train,test}{A,B} with A = anime."""
    members = {"selfie2anime/README.txt": b"not an image"}
    for split, sl in (("train", slice(0, TRAIN)), ("test", slice(TRAIN, TRAIN + TEST))):
        for i, data in enumerate(faces["anime"][sl]):
            members[f"selfie2anime/{split}A/anime_{i:02d}.jpg"] = data
        for i, data in enumerate(faces["selfie"][sl]):
            members[f"selfie2anime/{split}B/selfie_{i:02d}.jpg"] = data
    members["__MACOSX/selfie2anime/trainA/._anime_00.jpg"] = b"AppleDouble"
    return _zip(members)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def with_archives(source: DataSource, archives: list[bytes], **changes) -> DataSource:
    """``source`` with the test archives' checksums (and tiny counts) instead of the real ones."""
    files = tuple(dataclasses.replace(f, sha256=sha256(a), size=0) for f, a in zip(source.files, archives))
    return dataclasses.replace(source, files=files, **{"counts": TINY_COUNTS, **changes})


def server_path(file: RemoteFile) -> str:
    return "/" + urllib.parse.urlsplit(file.path).path.lstrip("/")


# -- a local HTTP server that can misbehave ----------------------------------------------------


class FileServer:
    """Serves ``files`` (path -> bytes) with Range support, and faults on request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.cut_short: dict[str, int] = {}  # path -> how many responses to cut at half the body
        self.status: dict[str, int] = {}  # path -> an error status to answer with
        self.ignore_range: set[str] = set()
        self.slow: dict[str, tuple[int, float]] = {}  # path -> (bytes sent at once, then 1 byte every s)
        self.endless: set[str] = set()  # paths answered with no Content-Length and a body that never ends
        self.length: dict[str, int] = {}  # path -> the Content-Length to announce instead of the true one
        self.sent: dict[str, int] = {}  # path -> body bytes written so far
        self.stopping = threading.Event()
        state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                ask = self.headers.get("Range")
                state.requests.append((path, ask))
                if path in state.status:
                    self.send_error(state.status[path])
                    return
                if path in state.endless:
                    self.send_response(200)
                    self.end_headers()
                    try:
                        while not state.stopping.is_set():
                            self.wfile.write(b"\0" * 65536)
                            state.sent[path] = state.sent.get(path, 0) + 65536
                    except OSError:
                        pass  # the client hung up
                    return
                data = state.files.get(path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if ask and path not in state.ignore_range:
                    start = int(ask.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(state.length.get(path, len(body))))
                self.end_headers()
                if state.cut_short.get(path, 0) > 0:  # send half, then drop the connection
                    state.cut_short[path] -= 1
                    body = body[: len(body) // 2]
                if path in state.slow:
                    self._trickle(path, body, *state.slow[path])
                    return
                self.wfile.write(body)
                state.sent[path] = state.sent.get(path, 0) + len(body)

            def _trickle(self, path: str, body: bytes, first: int, every: float) -> None:
                try:
                    pieces = [body[:first]] + [body[i : i + 1] for i in range(first, len(body))]
                    for n, piece in enumerate(pieces):
                        if n and state.stopping.wait(every):
                            return
                        self.wfile.write(piece)
                        state.sent[path] = state.sent.get(path, 0) + len(piece)
                except OSError:
                    pass  # the client hung up

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def server():
    srv = FileServer()
    yield srv
    srv.stop()


@pytest.fixture
def root(server, tmp_path, monkeypatch) -> Path:
    """The data root, with every source's base URL pointed at the local server."""
    monkeypatch.setenv(download.MIRROR_ENV, server.url)
    monkeypatch.setenv(download.DATA_ROOT_ENV, str(tmp_path / "data"))
    monkeypatch.setattr(download, "RETRY_DELAY_S", 0.0)
    return tmp_path / "data"


@pytest.fixture
def selfie_source(server, faces) -> DataSource:
    """The bundled selfie2anime source, serving a tiny zip in its real (swapped) layout."""
    archive = uvcgan2_zip(faces)
    server.files[server_path(bundled.SELFIE2ANIME.files[0])] = archive
    return with_archives(bundled.SELFIE2ANIME, [archive])


def use_sources(monkeypatch, *sources: DataSource) -> None:
    """Make `ganforge data` see these sources (as a third-party plugin would add them)."""
    host = bare_host()
    module = types.SimpleNamespace(
        register_data_sources=hookimpl(lambda register: [register(s.name, s) for s in sources])
    )
    host.register_module(module, "test-sources")
    host.collect()
    assert not host.failures()
    monkeypatch.setattr(data_commands, "_HOST", host)


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# -- the whole path ----------------------------------------------------------------------------


def test_get_fixes_the_swapped_zip_through_the_mirror(root, server, selfie_source, capsys):
    result = get_dataset(selfie_source)
    target = root / "selfie2anime"
    assert result.path == target and not result.already
    # the zip's A was anime: installed as U-GAT-IT's trainA = selfies
    for split, n in (("train", TRAIN), ("test", TEST)):
        assert sorted(p.name for p in (target / f"{split}A").iterdir()) == [
            f"selfie_{i:02d}.jpg" for i in range(n)
        ]
        assert sorted(p.name for p in (target / f"{split}B").iterdir()) == [
            f"anime_{i:02d}.jpg" for i in range(n)
        ]
    marker = json.loads((target / download.MARKER).read_text())
    assert marker["source"] == "selfie2anime" and marker["counts"] == TINY_COUNTS
    assert marker["files"][0]["sha256"] == selfie_source.files[0].sha256
    # nothing else: no .part, no staging folder, no README or AppleDouble file
    assert sorted(p.name for p in root.iterdir()) == ["selfie2anime"]
    assert {p.suffix for p in target.rglob("*") if p.is_file()} == {".jpg", ".json"}
    assert server.requests == [("/s/9lz6gwwwyyxpdnn/selfie2anime.zip", None)]
    err = capsys.readouterr().err
    assert "downloaded selfie2anime.zip:" in err and "sha256 ok" in err


def test_second_call_is_a_noop_that_says_where(root, server, selfie_source, monkeypatch):
    use_sources(monkeypatch, selfie_source)
    runner = CliRunner()
    first = runner.invoke(cli, ["data", "get", "selfie2anime"])
    assert first.exit_code == 0, first.output
    assert f"selfie2anime is ready in {root / 'selfie2anime'}" in first.stderr
    assert "installed as U-GAT-IT's trainA = selfies" in first.stderr  # the source's declared swap
    second = runner.invoke(cli, ["data", "get", "selfie2anime"])
    assert second.exit_code == 0
    assert f"selfie2anime is already in {root / 'selfie2anime'}" in second.stderr
    assert "nothing to do" in second.stderr and len(server.requests) == 1


def test_a_cut_short_transfer_resumes_with_range(root, server, selfie_source):
    path = server_path(selfie_source.files[0])
    server.cut_short[path] = 1
    get_dataset(selfie_source)
    half = len(server.files[path]) // 2
    assert server.requests == [(path, None), (path, f"bytes={half}-")]
    assert len(list((root / "selfie2anime" / "trainA").iterdir())) == TRAIN  # sha256 verified the join


def test_an_interrupted_call_keeps_the_part_and_the_next_call_resumes(root, server, selfie_source):
    path = server_path(selfie_source.files[0])
    server.cut_short[path] = download.ATTEMPTS
    with pytest.raises(GanforgeError, match="run the same command again to resume") as err:
        get_dataset(selfie_source)
    assert "\n" not in str(err.value)
    part = root / ".selfie2anime.ganforge-download" / "selfie2anime.zip.part"
    kept = part.stat().st_size
    assert 0 < kept < len(server.files[path]) and not (root / "selfie2anime").exists()
    server.requests.clear()
    get_dataset(selfie_source)
    assert server.requests == [(path, f"bytes={kept}-")]
    assert leftovers(root)[0] == "selfie2anime" and not part.exists()


def test_a_server_that_ignores_range_restarts_cleanly(root, server, selfie_source):
    path = server_path(selfie_source.files[0])
    server.cut_short[path] = 1
    server.ignore_range.add(path)
    result = get_dataset(selfie_source)
    assert [r[1] is not None for r in server.requests] == [False, True]  # asked to resume, got it all
    assert result.marker["counts"] == TINY_COUNTS


def test_a_wrong_checksum_is_one_line_and_leaves_nothing(root, server, selfie_source):
    bad = dataclasses.replace(
        selfie_source, files=(dataclasses.replace(selfie_source.files[0], sha256="0" * 64),)
    )
    with pytest.raises(GanforgeError) as err:
        get_dataset(bad)
    message = str(err.value)
    assert "\n" not in message and "sha256 mismatch" in message and "the download was removed" in message
    assert "LS4GAN/uvcgan2" in message  # where the expected checksum was published
    assert leftovers(root) == []


def test_a_server_error_is_one_line(root, server, selfie_source, monkeypatch):
    server.status[server_path(selfie_source.files[0])] = 500
    use_sources(monkeypatch, selfie_source)
    result = CliRunner().invoke(cli, ["data", "get", "selfie2anime"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: download of ") and "HTTP 500" in lines[0]
    assert leftovers(root) == []


def test_to_dir(root, server, selfie_source, monkeypatch, tmp_path):
    use_sources(monkeypatch, selfie_source)
    elsewhere = tmp_path / "elsewhere" / "s2a"
    result = CliRunner().invoke(cli, ["data", "get", "selfie2anime", "--to", str(elsewhere)])
    assert result.exit_code == 0, result.output
    assert len(list((elsewhere / "testB").iterdir())) == TEST and (elsewhere / download.MARKER).is_file()
    assert not root.exists()


def test_a_count_mismatch_installs_nothing(root, server, selfie_source):
    wrong = dataclasses.replace(selfie_source, counts={**TINY_COUNTS, "trainA": TRAIN + 1})
    with pytest.raises(
        GanforgeError, match=rf"unexpected image counts: trainA: {TRAIN} \(expected {TRAIN + 1}\)"
    ):
        get_dataset(wrong)
    assert leftovers(root) == []


def test_a_foreign_folder_is_never_overwritten(root, server, selfie_source):
    mine = root / "selfie2anime" / "trainA" / "mine.jpg"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"keep me")
    with pytest.raises(GanforgeError, match="not written by `ganforge data get`"):
        get_dataset(selfie_source, force=True)
    assert mine.read_bytes() == b"keep me" and server.requests == []


def test_force_replaces_a_folder_data_get_wrote(root, server, selfie_source):
    target = get_dataset(selfie_source).path
    (target / "stale.txt").write_text("from before")
    result = get_dataset(selfie_source, force=True)
    assert not result.already and not (target / "stale.txt").exists() and len(server.requests) == 2
    assert (target / download.MARKER).is_file() and not (root / ".selfie2anime.ganforge-download").exists()


@pytest.mark.parametrize(
    "member", ["../evil.jpg", "/tmp/evil.jpg", "C:/evil.jpg", "selfie2anime/trainA/../../evil.jpg"]
)
def test_unsafe_members_are_rejected(root, server, faces, member):
    archive = _zip({"selfie2anime/trainA/ok.jpg": faces["anime"][0], member: faces["anime"][1]})
    server.files[server_path(bundled.SELFIE2ANIME.files[0])] = archive
    with pytest.raises(GanforgeError, match="unsafe member"):
        get_dataset(with_archives(bundled.SELFIE2ANIME, [archive]))
    assert leftovers(root) == [] and not (root.parent / "evil.jpg").exists()


def test_a_source_without_a_checksum_is_checked_by_structure_and_counts(root, server, faces, monkeypatch):
    archive = _zip(
        {f"faces/{i}.jpg": data for i, data in enumerate(faces["anime"][:4])} | {"faces/x.txt": b"-"}
    )
    server.files["/plain/faces.zip"] = archive
    source = DataSource(
        name="plain-faces",
        description="A test source whose host publishes no checksum.",
        base_url="https://example.invalid/",
        files=(RemoteFile(path="plain/faces.zip", layout={"faces": ""}),),
        counts={"": 4},
    )
    assert source.checksum == NO_CHECKSUM
    result = get_dataset(source)
    assert result.marker["files"][0]["verified"] == NO_CHECKSUM and result.marker["counts"] == {"": 4}
    use_sources(monkeypatch, source)
    monkeypatch.setenv("COLUMNS", "200")  # rich's table width off a terminal
    listed = CliRunner().invoke(cli, ["data", "list"])
    assert listed.exit_code == 0 and "no published checksum: checked by structure and" in listed.output


# -- the Hub copy: parquet, and an orientation nobody documented -------------------------------


def _parquet(a: list[bytes], b: list[bytes]) -> bytes:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # the Hub's Image feature

    def column(images: list[bytes], tag: str):
        return pa.array(
            [{"bytes": d, "path": f"{tag}_{i:02d}.jpg"} for i, d in enumerate(images)], type=image
        )

    out = io.BytesIO()
    pq.write_table(pa.table({"imageA": column(a, "a"), "imageB": column(b, "b")}), out)
    return out.getvalue()


@pytest.mark.parametrize("swapped", [False, True])
def test_hub_parquet_source_detects_which_column_is_anime(root, server, faces, swapped):
    selfie, anime = faces["selfie"], faces["anime"]
    first, second = (anime, selfie) if swapped else (selfie, anime)
    archives = [_parquet(first[:TRAIN], second[:TRAIN]), _parquet(first[TRAIN:], second[TRAIN:])]
    for file, archive in zip(bundled.SELFIE2ANIME_HUB.files, archives):
        server.files[server_path(file)] = archive
    result = get_dataset(with_archives(bundled.SELFIE2ANIME_HUB, archives))
    target = root / "selfie2anime"  # the Hub copy installs the same dataset folder
    assert result.path == target and result.marker["orientation"]["swapped"] is swapped
    density = result.marker["orientation"]["edge_density"]
    assert density["trainB"] > density["trainA"]
    selfie_tag = "b" if swapped else "a"
    assert {p.name[0] for p in (target / "trainA").iterdir()} == {selfie_tag}
    assert {p.name[0] for p in (target / "testA").iterdir()} == {selfie_tag}
    assert (target / "trainA" / f"{selfie_tag}_00.jpg").read_bytes() == selfie[0]


def test_flat_zip_with_duplicate_copies_unpacks_once(root, server, faces):
    # huggan/anime-faces: reportedly every face twice, in a folder and in a copy of it inside it
    images = {f"{i}.png": data for i, data in enumerate(faces["anime"][:5])}
    archive = _zip(
        {f"data/{n}": d for n, d in images.items()} | {f"data/data/{n}": d for n, d in images.items()}
    )
    server.files[server_path(bundled.ANIME_FACES_64.files[0])] = archive
    result = get_dataset(with_archives(bundled.ANIME_FACES_64, [archive], counts={"": 5}))
    assert sorted(p.name for p in result.path.glob("*.png")) == sorted(images)
    clash = _zip({"data/0.png": faces["anime"][0], "data/data/0.png": faces["anime"][1]})
    server.files[server_path(bundled.ANIME_FACES_64.files[0])] = clash
    with pytest.raises(GanforgeError, match="two different images would both be 0.png"):
        get_dataset(with_archives(bundled.ANIME_FACES_64, [clash], counts={"": 1}), root / "other")


# -- the pix2pix pairs: facades (CycleGAN's zip) and edges2shoes (Hub parquet) ----------------


def test_facades_zip_installs_pairs_that_paired_folders_reads(root, server, faces):
    # CycleGAN's facades.zip: facades/{train,test}{A,B}, a pair named 1_A.jpg / 1_B.jpg
    members = {}
    for split, sl in (("train", slice(0, TRAIN)), ("test", slice(TRAIN, TRAIN + TEST))):
        for i, (photo, label) in enumerate(zip(faces["selfie"][sl], faces["anime"][sl])):
            members[f"facades/{split}A/{i + 1}_A.jpg"] = photo
            members[f"facades/{split}B/{i + 1}_B.jpg"] = label
    archive = _zip(members)
    server.files[server_path(bundled.FACADES.files[0])] = archive
    result = get_dataset(with_archives(bundled.FACADES, [archive], counts={"trainA": TRAIN, "trainB": TRAIN}))
    assert result.path == root / "facades" and result.marker["counts"] == {"trainA": TRAIN, "trainB": TRAIN}
    assert len(list((root / "facades" / "testB").iterdir())) == TEST  # installed, not counted
    assert server.requests == [("/facades.zip", None)]  # the mirror keeps the relative path
    from ganforge.plugins import get_registry
    from ganforge.recipe import Recipe

    # the facades recipe's data table: label maps (trainB) in, photos (trainA) out
    recipe = Recipe.load(RECIPES / "pix2pix_facades.toml", ["data.image_size=32", "data.holdout=0"])
    ds = get_registry().build("dataset", recipe.data["data"], seed=0)
    assert len(ds) == TRAIN and [a.name for a, _ in ds.pairs][:2] == ["1_A.jpg", "2_A.jpg"]
    assert ds.direction == "BtoA" and ds[0]["A"].shape == (3, 32, 32)


def test_edges2shoes_parquet_files_name_pairs_by_row(root, server, faces):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    archives = []
    for f in range(3):  # the same stored names in every file: row names keep them apart
        edges, shoes = faces["anime"][f * 2 : f * 2 + 2], faces["selfie"][f * 2 : f * 2 + 2]
        table = pa.table(
            {
                "imageA": pa.array(
                    [{"bytes": d, "path": f"{i}.jpg"} for i, d in enumerate(edges)], type=image
                ),
                "imageB": pa.array(
                    [{"bytes": d, "path": f"{i}.jpg"} for i, d in enumerate(shoes)], type=image
                ),
            }
        )
        out = io.BytesIO()
        pq.write_table(table, out)
        archives.append(out.getvalue())
    for file, archive in zip(bundled.EDGES2SHOES.files, archives):
        server.files[server_path(file)] = archive
    source = with_archives(bundled.EDGES2SHOES, archives, counts={"trainA": 6, "trainB": 6})
    result = get_dataset(source)
    names = [f"{f}-{i:05d}.jpg" for f in range(3) for i in range(2)]
    for folder in ("trainA", "trainB"):
        assert sorted(p.name for p in (result.path / folder).iterdir()) == names
    assert (result.path / "trainA" / "1-00001.jpg").read_bytes() == faces["anime"][3]  # edges in A
    assert (result.path / "trainB" / "1-00001.jpg").read_bytes() == faces["selfie"][3]
    from ganforge.plugins import get_registry

    ds = get_registry().build(
        "dataset", {"name": "paired-folders", "source": "edges2shoes", "image_size": 32, "holdout": 0}, seed=0
    )
    assert len(ds) == 6 and all(a.name == b.name for a, b in ds.pairs)


# -- recipes find the data with no flag --------------------------------------------------------


def test_dataset_not_found_names_the_data_get_command(tmp_path, monkeypatch):
    from ganforge.plugins import get_registry

    monkeypatch.setenv(download.DATA_ROOT_ENV, str(tmp_path / "empty"))
    with pytest.raises(GanforgeError) as err:
        get_registry().build("dataset", {"name": "unpaired-folders", "source": "selfie2anime"})
    message = str(err.value)
    assert str((tmp_path / "empty" / "selfie2anime" / "trainA").resolve()) in message
    assert "`ganforge data get selfie2anime`" in message and download.DATA_ROOT_ENV in message
    with pytest.raises(GanforgeError, match="`ganforge data get anime_faces_64`"):
        get_registry().build("dataset", {"name": "image-folder", "source": "anime_faces_64"})


def test_a_recipe_trains_on_the_downloaded_folder_with_no_root(root, server, selfie_source):
    from ganforge.plugins import get_registry
    from ganforge.recipe import Recipe
    from ganforge.training.trainer import Trainer

    get_dataset(selfie_source)
    recipe = Recipe.load(
        RECIPES / "cyclegan_selfie2anime.toml",
        [*TINY, "train.max_steps=1", "train.device='cpu'", *NO_CALLBACKS],
    )
    resolved = recipe.resolve(get_registry())
    assert resolved["data"]["root"] == "" and resolved["data"]["source"] == "selfie2anime"
    trainer = Trainer(resolved, root.parent / "run", get_registry())
    assert trainer.fit()["step"] == 1
    assert trainer.dataset.files_a[0].parent == root / "selfie2anime" / "trainA"


# -- listing, plugins, start-up ----------------------------------------------------------------


def test_data_list_shows_sources_checksum_origins_and_installs(root, server, selfie_source, monkeypatch):
    use_sources(monkeypatch, selfie_source, bundled.SELFIE2ANIME_HUB, bundled.ANIME_FACES_64)
    runner = CliRunner()
    assert runner.invoke(cli, ["data", "get", "selfie2anime"]).exit_code == 0
    rows = {row["name"]: row for row in json.loads(runner.invoke(cli, ["data", "list", "--json"]).stdout)}
    assert set(rows) == {"selfie2anime", "selfie2anime-hub", "anime_faces_64"}
    assert rows["selfie2anime"]["installed"] == str(root / "selfie2anime")
    assert rows["selfie2anime-hub"]["installed_from"] == "selfie2anime"  # same folder, other source
    assert rows["anime_faces_64"]["installed"] == ""
    assert rows["anime_faces_64"]["files"][0]["sha256"] == bundled.ANIME_FACES_64.files[0].sha256
    assert rows["anime_faces_64"]["files"][0]["url"].startswith(server.url + "/datasets/huggan/anime-faces/")
    monkeypatch.setenv("COLUMNS", "200")  # rich's table width off a terminal
    table = runner.invoke(cli, ["data", "list"]).output
    assert "sha256 (github.com/LS4GAN/uvcgan2)" in table
    assert "sha256 (huggingface.co/datasets/huggan/selfie2anime)" in table


def test_hook_register_data_sources():
    from ganforge_plugins.apps import data as data_app

    host = bare_host()
    sources = types.SimpleNamespace(register_data_sources=data_app.register_data_sources)
    host.register_module(sources, "data", "ganforge", "0.1.0")
    extra = DataSource(
        name="third-party-faces",
        description="Faces from somebody else's server.",
        base_url="https://example.invalid/",
        files=(
            RemoteFile(path="f.zip", sha256="a" * 64, checksum_from="https://example.invalid/SHA256SUMS"),
        ),
        counts={"": 1},
    )

    class Plugin:
        @hookimpl
        def register_data_sources(self, register):
            register(extra.name, extra)
            register("as-a-function", lambda: dataclasses.replace(extra, name="as-a-function"))
            register("not-a-source", lambda: 42)

    host.register_module(Plugin(), "third-party", "ganforge-faces", "1.0")
    host.collect()
    registry = host.registry
    assert registry.get("data_source", "third-party-faces").doc == "Faces from somebody else's server."
    assert download.get_source(registry, "as-a-function").name == "as-a-function"
    assert download.get_source(registry, "selfie2anime") is bundled.SELFIE2ANIME
    with pytest.raises(GanforgeError, match="is a int, expected a .*DataSource"):
        download.get_source(registry, "not-a-source")
    with pytest.raises(GanforgeError, match="unknown data_source 'selfie2anme'; did you mean 'selfie2anime'"):
        download.get_source(registry, "selfie2anme")


def test_bundled_declarations():
    for source in bundled.SOURCES:
        for file in source.files:
            assert len(file.sha256) == 64 and file.checksum_from.startswith("https://")
            assert "@" in source.revision or "Dropbox" in source.revision
    assert bundled.SELFIE2ANIME.counts == {"trainA": 3400, "trainB": 3400, "testA": 100, "testB": 100}
    assert set(bundled.SELFIE2ANIME.files[0].layout.values()) == set(bundled.SELFIE2ANIME.counts)
    assert bundled.FACADES.counts == {"trainA": 400, "trainB": 400}
    assert bundled.EDGES2SHOES.counts == {"trainA": 50025, "trainB": 50025}
    assert [f.row_names for f in bundled.EDGES2SHOES.files] == ["0-", "1-", "2-"]


def test_data_commands_do_not_import_torch():
    code = (
        "import sys\n"
        "sys.argv = ['ganforge', 'data', 'list', '--json']\n"
        "from ganforge.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('torch loaded:', 'torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("torch loaded: False")


def test_image_extensions_match_the_data_module():
    from ganforge.data import IMAGE_EXTENSIONS

    assert download.IMAGE_EXTENSIONS == IMAGE_EXTENSIONS


def test_edge_density_tells_drawings_from_photos(tmp_path, faces):
    def median(kind: str) -> float:
        values = []
        for i, data in enumerate(faces[kind]):
            (tmp_path / f"{kind}{i}.jpg").write_bytes(data)
            values.append(download.edge_density(tmp_path / f"{kind}{i}.jpg"))
        return sorted(values)[len(values) // 2]

    assert median("anime") >= download.EDGE_RATIO * median("selfie")
