"""`ganforge data get` against hostile archives and servers (issue 22), each bounded to seconds.

Zip and parquet bombs, a server that trickles, stalls, never ends its body or announces the
wrong size, a process killed mid-transfer, bad mirrors and `--to` values, over-long member
names, and installing from files the user already has (``--from``, file mirrors). The server is
the one of test_data_get.py on 127.0.0.1; the bounds are lowered by monkeypatching the module's
constants, so each test waits a second at most.
"""

from __future__ import annotations

import dataclasses
import io
import json
import random
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
import test_data_get as base
from click.testing import CliRunner
from rich.console import Console
from test_data_get import TEST, TINY_COUNTS, TRAIN, _parquet, _zip, leftovers, server_path, use_sources

import ganforge_plugins.apps.data.sources as bundled
from ganforge.cli import cli
from ganforge.errors import GanforgeError
from ganforge_plugins.apps.data import download
from ganforge_plugins.apps.data.download import DataSource, RemoteFile, get_dataset

# A refusal or a stopped transfer returns promptly: within a minute, where the transfers these
# tests feed would take tens of minutes without their limits (a trickle of 20 B/s, a stall of a
# minute per read). Bounds of a few seconds failed under load (a full suite on a shared machine).
PROMPT_S = 60


# The fixtures of test_data_get.py, on its helpers (a fixture cannot be imported without shadowing).
@pytest.fixture(scope="module")
def faces() -> dict[str, list[bytes]]:
    return {"selfie": base._images("selfie", TRAIN + TEST), "anime": base._images("anime", TRAIN + TEST)}


@pytest.fixture
def server():
    srv = base.FileServer()
    yield srv
    srv.stop()


@pytest.fixture
def root(server, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(download.MIRROR_ENV, server.url)
    monkeypatch.setenv(download.DATA_ROOT_ENV, str(tmp_path / "data"))
    monkeypatch.setattr(download, "RETRY_DELAY_S", 0.0)
    return tmp_path / "data"


@pytest.fixture
def selfie_source(server, faces) -> DataSource:
    archive = base.uvcgan2_zip(faces)
    server.files[server_path(bundled.SELFIE2ANIME.files[0])] = archive
    return base.with_archives(bundled.SELFIE2ANIME, [archive])


PLAIN = "/plain/faces.zip"


def plain_source(server, archive: bytes, count: int = 1, **changes) -> DataSource:
    """A third-party source with no checksum (only structure and counts check it) serving ``archive``."""
    server.files[PLAIN] = archive
    source = DataSource(
        name="plain-faces",
        description="A test source whose host publishes no checksum.",
        base_url="https://example.invalid/",
        files=(RemoteFile(path=PLAIN.lstrip("/"), layout={"faces": ""}),),
        counts={"": count},
    )
    return dataclasses.replace(source, **changes)


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# -- 1. archive bombs ----------------------------------------------------------------------------


def zeros_deflate(mib: int) -> bytes:
    """A raw deflate stream of ``mib`` MiB of zeros, ~1 kB per MiB (built without compressing it all).

    Each MiB is compressed after a full flush, which resets the compressor, so every MiB after the
    first gives the same bytes and the stream is those bytes repeated.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    repeat = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    return first + repeat * (mib - 1) + c.flush()


def raw_zip(name: str, stream: bytes, size: int, crc: int = 0) -> bytes:
    """A one-member zip around a deflate ``stream``, declaring ``size`` (headers written by hand)."""
    n = name.encode()
    head = (0x04034B50, 20, 0, 8, 0, 0x21, crc, len(stream), size, len(n), 0)
    local = struct.pack("<IHHHHHIIIHH", *head) + n
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        20,
        20,
        0,
        8,
        0,
        0x21,
        crc,
        len(stream),
        size,
        len(n),
        0,
        0,
        0,
        0,
        0,
        0,
    )
    central += n
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(stream), 0)
    return local + stream + central + end


def test_a_3_gib_zip_bomb_is_refused_before_anything_is_written(root, server):
    # The bomb: one 3 GiB member named bomb.png, 3.1 MB compressed, from a source with
    # no checksum. Before: unpacked with exit 0 at 6.3 GB peak memory.
    archive = raw_zip("faces/bomb.png", zeros_deflate(3 << 10), 3 << 30)
    assert 3_000_000 < len(archive) < 3_300_000
    source = plain_source(server, archive)
    started = time.monotonic()
    with pytest.raises(GanforgeError) as err:
        get_dataset(source)
    message = one_line(err)
    assert message.startswith("faces.zip: member 'faces/bomb.png' declares 3.2 GB, over 268.4 MB")
    assert "max_member_bytes" in message and "nothing was installed" in message
    assert time.monotonic() - started < PROMPT_S and leftovers(root) == []


def test_a_member_that_inflates_past_what_it_declares_stops_at_the_declared_size(root, server):
    # Declares 1 kB (passes every check), inflates to 64 MiB: zipfile stops at 1 kB and the CRC fails.
    archive = raw_zip("faces/liar.png", zeros_deflate(64), 1000)
    tracemalloc.start()
    try:
        with pytest.raises(GanforgeError) as err:
            get_dataset(plain_source(server, archive))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert one_line(err).startswith("faces.zip:faces/liar.png: damaged (BadZipFile: Bad CRC-32")
    assert peak < 16 << 20 and leftovers(root) == []


def test_an_absurd_compression_ratio_is_refused(root, server):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("faces/flat.bmp", bytes(8 << 20))  # 8 MiB of zeros deflate ~1000x
    archive = out.getvalue()
    with pytest.raises(GanforgeError) as err:
        get_dataset(plain_source(server, archive))
    assert "member 'faces/flat.bmp' unpacks 8.2 kB into 8.4 MB (1,0" in one_line(err)
    assert "over 100x" in str(err.value) and leftovers(root) == []
    # a source that knows its members compress this well may raise the ratio
    result = get_dataset(plain_source(server, archive, max_ratio=2000))
    assert (result.path / "flat.bmp").stat().st_size == 8 << 20


def test_members_stream_to_disk_and_the_limits_hold(root, server, tmp_path):
    big = random.Random(0).randbytes(6 << 20)  # incompressible: no ratio concern
    archive = _zip({"faces/big.png": big})
    # unpacked in chunks: the peak is a fraction of the member (it was the whole member, and more)
    zip_path = tmp_path / "big.zip"
    zip_path.write_bytes(archive)
    dest = tmp_path / "out"
    dest.mkdir()
    source = plain_source(server, archive)
    tracemalloc.start()
    try:
        download._unpack_zip(source.files[0], zip_path, dest, download._Budget(source))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (dest / "big.png").read_bytes() == big and peak < 4 << 20
    assert sorted(p.name for p in dest.iterdir()) == ["big.png"]  # the temporary file is gone
    # one member over the source's limit, and members that together pass the total
    with pytest.raises(GanforgeError) as err:
        get_dataset(plain_source(server, archive, max_member_bytes=4 << 20))
    assert one_line(err).startswith("faces.zip: member 'faces/big.png' declares 6.3 MB, over 4.2 MB")
    two = tmp_path / "two.zip"  # given with --from: a download this size stops at the same limit
    two.write_bytes(_zip({"faces/a.png": big[: 3 << 20], "faces/b.png": big[3 << 20 :]}))
    with pytest.raises(GanforgeError) as err:
        get_dataset(plain_source(server, b"", count=2, max_unpacked_bytes=5 << 20), local=[two])
    assert one_line(err).startswith(f"{two}: its images declare 6.3 MB, over 5.2 MB left")  # the user's file
    assert leftovers(root) == []


def test_parquet_cells_and_pages_have_the_same_limits(root, server, faces):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    big = random.Random(1).randbytes(300_000)
    archive = _parquet([big], [faces["anime"][0]])
    server.files["/plain/faces.parquet"] = archive
    source = DataSource(
        name="plain-parquet",
        description="A parquet test source with no checksum.",
        base_url="https://example.invalid/",
        files=(
            RemoteFile(path="plain/faces.parquet", format="parquet", layout={"imageA": "A", "imageB": "B"}),
        ),
        counts={"A": 1, "B": 1},
        max_member_bytes=100_000,
    )
    with pytest.raises(GanforgeError) as err:
        get_dataset(source)
    assert one_line(err).startswith("faces.parquet: member 'imageA[0]' passes 100.0 kB")
    # a column page of zeros that zstd packs ~1000x: refused from the metadata, before any row is read
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    column = pa.array([{"bytes": bytes(8 << 20), "path": "a.png"}], type=image)
    out = io.BytesIO()
    pq.write_table(pa.table({"imageA": column, "imageB": column}), out, compression="zstd")
    server.files["/plain/faces.parquet"] = out.getvalue()
    with pytest.raises(GanforgeError) as err:
        get_dataset(dataclasses.replace(source, max_member_bytes=download.MAX_MEMBER_BYTES))
    assert "faces.parquet: column imageA.bytes of row group 0 unpacks" in one_line(err)
    assert "over 100x" in str(err.value) and leftovers(root) == []


# -- 2. slow, stalled and endless servers ------------------------------------------------------


@pytest.fixture
def fast_bounds(monkeypatch):
    """Transfer bounds scaled to a test: a 0.5 s speed window, short read timeouts."""
    monkeypatch.setattr(download, "SPEED_WINDOW_S", 0.5)
    monkeypatch.setattr(download, "READ_TIMEOUT_S", 2.0)
    monkeypatch.setattr(download, "PROGRESS_EVERY_S", 0.2)


def test_a_trickling_server_is_too_slow_and_its_bytes_are_kept(
    root, server, selfie_source, fast_bounds, capsys
):
    path = server_path(selfie_source.files[0])
    server.slow[path] = (200, 0.05)  # 200 bytes, then 20 bytes/s: under the 1 kB/s minimum
    started = time.monotonic()
    with pytest.raises(GanforgeError) as err:
        get_dataset(selfie_source)
    message = one_line(err)
    assert time.monotonic() - started < PROMPT_S
    assert message.startswith(f"download of {server.url}{path}?dl=1 is too slow: ")
    assert "B/s over the last 0.5 s, below the minimum of 1.0 kB/s" in message
    part = root / ".selfie2anime.ganforge-download" / "selfie2anime.zip.part"
    kept = part.stat().st_size
    assert kept >= 200 and f"{kept:,} bytes are kept in {part}: run the same command again" in message
    assert "selfie2anime.zip: 0% (" in capsys.readouterr().err  # a progress line off a terminal, by time
    server.slow.clear()
    get_dataset(selfie_source)  # the next call resumes from what arrived
    assert server.requests[-1] == (path, f"bytes={kept}-")


def test_a_stalled_server_times_out_per_read(root, server, selfie_source, fast_bounds, monkeypatch):
    monkeypatch.setattr(download, "READ_TIMEOUT_S", 0.3)
    path = server_path(selfie_source.files[0])
    server.slow[path] = (100, 60.0)  # 100 bytes, then nothing
    started = time.monotonic()
    with pytest.raises(GanforgeError) as err:
        get_dataset(selfie_source)
    assert time.monotonic() - started < PROMPT_S
    assert f"was interrupted {download.ATTEMPTS} times (TimeoutError" in one_line(err)
    assert [r[1] for r in server.requests] == [None, "bytes=100-", "bytes=200-"]  # each resumed


def test_the_whole_file_has_a_deadline_scaled_by_its_size(root, server, selfie_source, monkeypatch):
    monkeypatch.setattr(download, "MIN_SPEED_BPS", 0.0)
    monkeypatch.setattr(download, "DEADLINE_BASE_S", 0.5)
    monkeypatch.setattr(download, "DEADLINE_MIN_BPS", 1e12)
    server.slow[server_path(selfie_source.files[0])] = (100, 0.05)
    started = time.monotonic()
    with pytest.raises(GanforgeError) as err:
        get_dataset(selfie_source)
    assert time.monotonic() - started < PROMPT_S
    assert "did not finish in 0.5 s (the limit for " in one_line(err) and "bytes are kept in" in str(
        err.value
    )
    console = Console(stderr=True)
    job = download._Transfer(selfie_source, bundled.ANIME_FACES_64.files[0], "u", root / "x.part", console)
    assert job.deadline_s == 0.5 + 462126466 / 1e12  # the declared size sets it before any answer


def test_progress_lines_every_10_percent_off_a_terminal(root, server, selfie_source, monkeypatch, capsys):
    monkeypatch.setattr(download, "CHUNK", 1000)
    get_dataset(selfie_source)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("selfie2anime.zip: ")]
    percents = [int(line.split()[1].rstrip("%")) for line in lines]
    assert [p // 10 * 10 for p in percents] == list(range(10, 100, 10))  # once per step, in order
    assert " of " in lines[0] and lines[0].endswith("/s)")


def test_bytes_that_arrived_survive_sigterm_and_resume(root, server, faces, tmp_path):
    archive = _zip({"faces/0.jpg": faces["anime"][0]})
    path = "/slow/faces.zip"
    server.files[path] = archive
    server.slow[path] = (100, 30.0)  # 100 bytes, then a stall: the process is killed meanwhile
    target = tmp_path / "killed"
    code = (
        "from ganforge_plugins.apps.data.download import DataSource, RemoteFile, get_dataset\n"
        f"source = DataSource(name='slow', description='-', base_url={server.url!r}, "
        f"files=(RemoteFile(path='slow/faces.zip', size={len(archive)}, layout={{'faces': ''}}),), "
        "counts={'': 1})\n"
        f"get_dataset(source, {str(target)!r})\n"
    )
    part = tmp_path / ".killed.ganforge-download" / "faces.zip.part"
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    try:
        # Until the 100 bytes are in the file (each read is flushed), however loaded the machine:
        # a fixed wait here raced the child's start-up. Were they buffered in the process, the
        # file would stay empty until the deadline and the assertion below would say so.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if part.is_file() and part.stat().st_size >= 100:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert part.stat().st_size == 100  # it was 0: the bytes sat in the process's write buffer
    server.slow.clear()
    source = DataSource(
        name="slow",
        description="-",
        base_url=server.url,
        files=(RemoteFile(path="slow/faces.zip", size=len(archive), layout={"faces": ""}),),
        counts={"": 1},
    )
    get_dataset(source, target)
    assert server.requests[-1] == (path, "bytes=100-") and (target / "0.jpg").is_file()


def test_an_endless_body_stops_at_the_declared_size(root, server):
    server.endless.add("/endless/faces.zip")
    source = DataSource(
        name="endless",
        description="-",
        base_url="https://example.invalid/",
        files=(RemoteFile(path="endless/faces.zip", size=200_000, layout={"faces": ""}),),
        counts={"": 1},
    )
    with pytest.raises(GanforgeError) as err:
        get_dataset(source)
    assert "stopped: the body passed the 200,000 bytes declared; nothing was kept" in one_line(err)
    assert leftovers(root) == []
    # no size anywhere: the source's unpacking limit caps the download
    unknown = dataclasses.replace(source, files=(dataclasses.replace(source.files[0], size=0),))
    with pytest.raises(GanforgeError) as err:
        get_dataset(dataclasses.replace(unknown, max_unpacked_bytes=300_000))
    assert "passed the 300,000 bytes allowed for a file of unknown size (max_unpacked_bytes)" in one_line(err)
    assert leftovers(root) == []


def test_a_size_the_server_announces_against_the_declared_one_is_refused_at_once(root, server, faces):
    archive = _zip({"faces/0.jpg": faces["anime"][0]})
    source = plain_source(server, archive)
    declared = dataclasses.replace(
        source, files=(dataclasses.replace(source.files[0], size=len(archive) - 1),)
    )
    with pytest.raises(GanforgeError) as err:
        get_dataset(declared)
    assert (
        f"the server announces {len(archive):,} bytes, plain-faces declares {len(archive) - 1:,}"
        in one_line(err)
    )
    server.length[PLAIN] = 50 << 30  # announces 50 GB for a file of unknown size
    with pytest.raises(GanforgeError) as err:
        get_dataset(source)
    assert "announces 53.7 GB, more than plain-faces may unpack (34.4 GB, max_unpacked_bytes)" in one_line(
        err
    )
    assert leftovers(root) == []


# -- 3. bad mirrors, unsafe --to, long names ---------------------------------------------------


@pytest.mark.parametrize(
    ("mirror", "why"),
    [
        ("notaurl", "is neither a URL nor an existing folder"),
        ("http://[::1", "is not a valid URL (Invalid IPv6 URL)"),
        ("ftp://example.org/x", "has an unsupported scheme 'ftp'"),
        ("http://", "has no host name"),
        ("file:///no/such/folder", "names a folder that does not exist (/no/such/folder)"),
    ],
)
def test_a_bad_mirror_is_one_line(root, server, selfie_source, monkeypatch, mirror, why):
    monkeypatch.setenv(download.MIRROR_ENV, mirror)
    use_sources(monkeypatch, selfie_source)
    expected = "expected an http:// or https:// URL, a file:// URL or an existing folder"
    for args in (["data", "get", "selfie2anime"], ["data", "list", "--json"]):
        result = CliRunner().invoke(cli, args)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert lines[0].startswith(f"error: GANFORGE_DATA_MIRROR = {mirror!r} ") and why in lines[0]
        assert expected in lines[0]
    assert server.requests == [] and leftovers(root) == []


@pytest.mark.parametrize(
    ("to", "why"),
    [
        (".", "the current folder"),
        ("..", "a folder holding the current folder"),
        ("/", "the root of the file system"),
        ("~", "your home folder"),
    ],
)
def test_a_to_that_cannot_be_replaced_is_refused_before_downloading(
    root, server, selfie_source, monkeypatch, tmp_path, to, why
):
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(work)
    use_sources(monkeypatch, selfie_source)
    result = CliRunner().invoke(cli, ["data", "get", "selfie2anime", "--to", to])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert f"it is {why}, and `data get` replaces the whole folder; nothing was downloaded" in lines[0]
    assert server.requests == [] and list(work.iterdir()) == [] and leftovers(root) == []
    assert list((tmp_path / "home").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "work"]  # no "..ganforge-download"


def test_a_300_character_member_name_is_one_line_and_staging_is_cleaned(root, server, faces):
    long = "selfie2anime/trainA/" + "a" * 296 + ".jpg"
    archive = _zip({"selfie2anime/trainA/ok.jpg": faces["anime"][0], long: faces["anime"][1]})
    server.files[server_path(bundled.SELFIE2ANIME.files[0])] = archive
    with pytest.raises(GanforgeError) as err:
        get_dataset(base.with_archives(bundled.SELFIE2ANIME, [archive]))
    assert "has a file name of 300 bytes, longer than the 255 file systems take" in one_line(err)
    assert leftovers(root) == []  # the verified zip went with the staging folder


def test_any_failure_after_the_download_cleans_staging(root, server, selfie_source, monkeypatch):
    def boom(*args):
        raise RuntimeError("a bug, or a full disk")

    monkeypatch.setattr(download, "_check_counts", boom)
    with pytest.raises(RuntimeError):
        get_dataset(selfie_source)
    assert leftovers(root) == []


# -- 4. offline: --from, file mirrors, and messages that name only what exists --------------------


def test_get_from_a_local_archive_downloads_nothing(root, server, selfie_source, monkeypatch, tmp_path):
    use_sources(monkeypatch, selfie_source)
    mine = tmp_path / "downloads" / "selfie2anime (1).zip"  # any name for a one-file source
    mine.parent.mkdir()
    mine.write_bytes(server.files[server_path(selfie_source.files[0])])
    before = mine.read_bytes()
    result = CliRunner().invoke(cli, ["data", "get", "selfie2anime", "--from", str(mine)])
    assert result.exit_code == 0, result.output
    assert (
        f"using {mine} for selfie2anime.zip (from --from): " in result.stderr and "sha256 ok" in result.stderr
    )
    assert server.requests == [] and mine.read_bytes() == before  # read in place, left as it was
    marker = json.loads((root / "selfie2anime" / download.MARKER).read_text())
    assert marker["files"][0]["from"] == str(mine) and marker["counts"] == TINY_COUNTS


def test_force_never_replaces_a_from_archive_inside_the_folder(
    root, server, selfie_source, monkeypatch, tmp_path
):
    """``--force`` replaces a folder an earlier ``data get`` wrote, with everything in it: an
    archive given with ``--from`` that sits in that folder (where a user may keep the download)
    would go with it. It is refused, and nothing changes."""
    use_sources(monkeypatch, selfie_source)
    runner = CliRunner()
    assert runner.invoke(cli, ["data", "get", "selfie2anime"]).exit_code == 0
    folder = root / "selfie2anime"
    mine = folder / "selfie2anime.zip"
    mine.write_bytes(server.files[server_path(selfie_source.files[0])])
    before = leftovers(folder)
    result = runner.invoke(cli, ["data", "get", "selfie2anime", "--force", "--from", str(mine)])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0] == (
        f"error: --from {mine} is inside {folder}, which this call replaces (with everything in it); "
        "nothing changed: move the file out of the folder first"
    )
    assert mine.read_bytes() == server.files[server_path(selfie_source.files[0])]
    assert leftovers(folder) == before and not (root / ".selfie2anime.ganforge-download").exists()
    moved = tmp_path / "selfie2anime.zip"  # out of the folder: --force replaces it as documented
    mine.rename(moved)
    again = runner.invoke(cli, ["data", "get", "selfie2anime", "--force", "--from", str(moved)])
    assert again.exit_code == 0, again.output
    assert moved.is_file() and "selfie2anime.zip" not in {p.name for p in folder.iterdir()}


def test_get_from_a_wrong_file_installs_nothing_and_keeps_it(
    root, server, selfie_source, monkeypatch, tmp_path
):
    use_sources(monkeypatch, selfie_source)
    other = tmp_path / "selfie2anime.zip"
    other.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: not the one
    result = CliRunner().invoke(cli, ["data", "get", "selfie2anime", "--from", str(other)])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "sha256 mismatch" in lines[0]
    assert f"nothing was installed and {other} was left as it is" in lines[0]
    assert other.is_file() and leftovers(root) == [] and server.requests == []
    missing = CliRunner().invoke(cli, ["data", "get", "selfie2anime", "--from", str(tmp_path / "nope.zip")])
    assert missing.exit_code == 2 and f"--from {tmp_path / 'nope.zip'}: file not found" in missing.stderr


def test_get_from_several_files_matches_them_by_name(root, server, faces, tmp_path):
    selfie, anime = faces["selfie"], faces["anime"]
    archives = [_parquet(selfie[:TRAIN], anime[:TRAIN]), _parquet(selfie[TRAIN:], anime[TRAIN:])]
    source = base.with_archives(bundled.SELFIE2ANIME_HUB, archives)
    paths = []
    for file, data in zip(source.files, archives):
        paths.append(tmp_path / file.filename)
        paths[-1].write_bytes(data)
    with pytest.raises(
        GanforgeError, match=r"^--from: selfie2anime-hub also needs test-00000-of-00001.parquet"
    ):
        get_dataset(source, local=paths[:1])
    stray = tmp_path / "other.parquet"
    stray.write_bytes(archives[0])
    with pytest.raises(
        GanforgeError, match="selfie2anime-hub has no file named 'other.parquet'; its files are"
    ):
        get_dataset(source, local=[*paths, stray])
    result = get_dataset(source, local=paths[::-1])  # any order
    assert result.marker["counts"] == TINY_COUNTS and server.requests == []
    assert len(list((result.path / "testA").iterdir())) == TEST


@pytest.mark.parametrize("form", ["path", "relative", "file-url"])
def test_a_folder_mirror_strips_the_query_string(root, server, selfie_source, monkeypatch, tmp_path, form):
    mirror = tmp_path / "mirror"
    copy = mirror / server_path(selfie_source.files[0]).lstrip("/")  # s/9lz.../selfie2anime.zip, no ?dl=1
    copy.parent.mkdir(parents=True)
    copy.write_bytes(server.files[server_path(selfie_source.files[0])])
    monkeypatch.chdir(tmp_path)
    value = {"path": str(mirror), "relative": "mirror", "file-url": mirror.as_uri()}[form]
    monkeypatch.setenv(download.MIRROR_ENV, value)
    result = get_dataset(selfie_source)
    url = result.marker["files"][0]["url"]
    assert url == copy.as_uri() and "?dl=1" not in url
    assert server.requests == [] and copy.is_file() and result.marker["counts"] == TINY_COUNTS
    assert selfie_source.to_json()["files"][0]["url"] == copy.as_uri()
    copy.unlink()
    with pytest.raises(GanforgeError, match=f"^{copy} not found \\(from the mirror GANFORGE_DATA_MIRROR\\)"):
        get_dataset(selfie_source, root / "again")


def test_a_give_up_message_names_only_files_that_exist(root, server, selfie_source):
    path = server_path(selfie_source.files[0])
    part = root / ".selfie2anime.ganforge-download" / "selfie2anime.zip.part"
    # a server that ignores Range: what arrived cannot be resumed, so it goes, and the message says so
    server.cut_short[path] = download.ATTEMPTS
    server.ignore_range.add(path)
    with pytest.raises(GanforgeError) as err:
        get_dataset(selfie_source)
    assert one_line(err).endswith(
        "the server does not resume downloads (it ignored the Range request), so nothing was kept"
    )
    assert not part.exists() and leftovers(root) == []
    # an error before any byte: nothing to keep, and no empty .part
    server.ignore_range.clear()
    server.cut_short.clear()
    server.status[path] = 503
    with pytest.raises(GanforgeError) as err:
        get_dataset(selfie_source)
    assert one_line(err).endswith("failed: HTTP 503 Service Unavailable; nothing was kept")
    assert leftovers(root) == []
    # a resumable one keeps the .part it names
    del server.status[path]
    server.cut_short[path] = download.ATTEMPTS
    with pytest.raises(GanforgeError) as err:
        get_dataset(selfie_source)
    assert (
        f"bytes are kept in {part}: run the same command again to resume" in one_line(err) and part.is_file()
    )
