"""Downloadable datasets: declared sources, resumable verified downloads, safe unpacking.

A :class:`DataSource` declares a dataset as data: where its files live (a base URL plus each
file's relative path), the sha256 of each file and where that checksum was published, how the
archive maps onto the standard folder layout, and how many images each folder must hold.
:func:`get_dataset` downloads each file into ``FILE.part`` (resuming with HTTP Range after an
interruption), verifies the sha256 before anything is unpacked, unpacks into a temporary
sibling of the target folder, checks orientation and counts, writes a marker file and renames
the folder into place, so a dataset folder is either complete or absent.

Datasets live in ``<data root>/<folder>``; the data root is ``GANFORGE_DATA_ROOT`` or
``~/.cache/ganforge/datasets``. ``GANFORGE_DATA_MIRROR`` replaces every source's base URL
(each file keeps its relative path there).

This module imports neither torch nor the bundled plugins: ``ganforge data`` starts fast.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from ganforge import __version__
from ganforge.errors import GanforgeError
from ganforge.paths import DATA_ROOT_ENV, data_root, data_root_text, dataset_dir  # noqa: F401 (re-exported)

MIRROR_ENV = "GANFORGE_DATA_MIRROR"
MARKER = ".ganforge-dataset.json"
MARKER_FORMAT = "ganforge-dataset/1"
NO_CHECKSUM = "no published checksum: checked by structure and image counts"
# The same list as ganforge.data.IMAGE_EXTENSIONS (a test keeps them equal); that module imports torch.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm")

ATTEMPTS = 3  # transfers per file and call; an interrupted one resumes where it stopped
RETRY_DELAY_S = 1.0  # times the attempt number, between attempts
TIMEOUT_S = 60.0
CHUNK = 1 << 20
USER_AGENT = f"ganforge/{__version__} (+https://pypi.org/project/ganforge)"

Format = Literal["zip", "parquet"]
Orientation = Literal["declared", "detect-drawn-B"]


@dataclass(frozen=True)
class RemoteFile:
    """One file of a source: where it is, what it must hash to, and where its contents go.

    ``layout`` maps the archive onto the dataset folder. For a zip: archive folder -> dataset
    folder (``""`` is the archive's or the dataset's root); the images anywhere under a listed
    folder land in its dataset folder (the longest listed prefix wins), every other member is
    skipped. For a parquet file: image column -> dataset folder.
    """

    path: str  # relative to the source's base URL, and to a mirror's
    sha256: str = ""  # "" where the source publishes none: structure and counts are checked instead
    checksum_from: str = ""  # where the sha256 was read (a URL at a fixed revision)
    size: int = 0  # bytes, 0 where not published
    format: Format = "zip"
    layout: dict[str, str] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        return PurePosixPath(urllib.parse.urlsplit(self.path).path).name or "download"


@dataclass(frozen=True)
class DataSource:
    """A downloadable dataset, declared as data; a plugin registers one with ``register(name, source)``.

    ``counts`` is the number of images each dataset folder must hold (``""`` for the dataset
    folder itself). ``orientation = "detect-drawn-B"`` is for two-domain photo/drawing sets whose
    copy may have A and B swapped: ganforge then measures which of trainA/trainB looks drawn
    (:func:`edge_density`) and swaps every A/B folder pair if the drawn images are in A.
    """

    name: str
    description: str
    base_url: str
    files: tuple[RemoteFile, ...]
    counts: dict[str, int]
    homepage: str = ""
    license: str = ""
    revision: str = ""  # the pinned revision, in words: "owner/repo@commit" or "none (checksum pins it)"
    folder: str = ""  # the dataset's folder under the data root (default: name)
    orientation: Orientation = "declared"
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.files:
            raise GanforgeError(f"data source {self.name!r}: needs a name and at least one file")
        object.__setattr__(self, "__doc__", self.description)  # what `ganforge list data_sources` shows

    def __call__(self) -> DataSource:
        """A source is its own zero-argument factory, so it registers like any component."""
        return self

    @property
    def dataset(self) -> str:
        return self.folder or self.name

    @property
    def checksum(self) -> str:
        """How the files are verified, in words (what ``ganforge data list`` prints)."""
        if all(f.sha256 for f in self.files):
            origins = sorted({f.checksum_from for f in self.files if f.checksum_from})
            return "sha256 published in " + "; ".join(origins) if origins else "sha256"
        return NO_CHECKSUM

    def url(self, file: RemoteFile) -> str:
        """The file's URL: its path under ``GANFORGE_DATA_MIRROR`` when set, else under the base URL."""
        base = os.environ.get(MIRROR_ENV) or self.base_url
        return base.rstrip("/") + "/" + file.path.lstrip("/")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dataset": self.dataset,
            "description": self.description,
            "homepage": self.homepage,
            "license": self.license,
            "revision": self.revision,
            "checksum": self.checksum,
            "orientation": self.orientation,
            "counts": dict(self.counts),
            "files": [
                {
                    "url": self.url(f),
                    "sha256": f.sha256,
                    "checksum_from": f.checksum_from,
                    "size": f.size,
                    "format": f.format,
                }
                for f in self.files
            ],
        }


@dataclass
class GetResult:
    """What :func:`get_dataset` did."""

    path: Path
    already: bool  # the folder was complete before: nothing downloaded
    marker: dict[str, Any]


# -- where datasets live ---------------------------------------------------------------------


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a folder that ``ganforge data get`` wrote, or None."""
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def sources(registry: Any) -> dict[str, DataSource]:
    """Every registered data source by name (``registry`` is a :class:`ganforge.registry.Registry`)."""
    return {name: get_source(registry, name) for name in registry.names("data_source")}


def get_source(registry: Any, name: str) -> DataSource:
    """The data source ``name``; unknown names get the closest ones suggested."""
    source = registry.build("data_source", {"name": name})
    if not isinstance(source, DataSource):
        component = registry.get("data_source", name)
        raise GanforgeError(
            f"data source '{name}' from {component.provider} is a {type(source).__name__}, "
            "expected a ganforge_plugins.apps.data.download.DataSource"
        )
    return source


# -- the whole job ---------------------------------------------------------------------------


def get_dataset(
    source: DataSource, target: str | os.PathLike[str] | None = None, force: bool = False, console: Any = None
) -> GetResult:
    """Download, verify and unpack ``source`` into ``target`` (default ``<data root>/<folder>``).

    A folder that an earlier call completed is left alone (``force`` replaces it); a non-empty
    folder without the marker is never touched. On a failure nothing is left but a resumable
    ``.part`` file of an interrupted transfer.
    """
    from rich.console import Console

    console = console or Console(stderr=True)
    target = Path(target) if target is not None else dataset_dir(source.dataset)
    marker = read_marker(target)
    if marker is not None and not force:
        return GetResult(target, True, marker)
    if target.exists() and not target.is_dir():
        raise GanforgeError(f"{target} is a file, expected a dataset folder (choose another --to)")
    if marker is None and target.is_dir() and any(target.iterdir()):
        raise GanforgeError(
            f"{target} exists, is not empty and was not written by `ganforge data get` (no {MARKER}); "
            "nothing changed: remove it or choose another folder with --to"
        )
    staging = target.parent / f".{target.name}.ganforge-download"
    staging.mkdir(parents=True, exist_ok=True)
    unpacked = staging / "unpacked"
    try:
        archives = [_fetch(source, file, staging, console) for file in source.files]
        _rmtree(unpacked)  # left by a crash: unpacking starts clean
        unpacked.mkdir()
        for file, archive in zip(source.files, archives):
            _unpack(file, archive, unpacked)
        orientation = _orient(source, unpacked)
        counts = _check_counts(source, unpacked)
        marker = {
            "format": MARKER_FORMAT,
            "source": source.name,
            "dataset": source.dataset,
            "revision": source.revision,
            "files": [
                {
                    "url": source.url(f),
                    "sha256": f.sha256 or None,
                    "verified": "sha256" if f.sha256 else NO_CHECKSUM,
                }
                for f in source.files
            ],
            "counts": counts,
            "orientation": orientation,
            "ganforge": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (unpacked / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        _install(unpacked, target, staging)
    except GanforgeError:
        _clean_staging(staging, target, keep_verified=False)  # only an interrupted transfer is worth keeping
        raise
    except BaseException:
        _clean_staging(staging, target, keep_verified=True)  # Ctrl-C: keep transfers and verified files
        raise
    _rmtree(staging)
    return GetResult(target, False, marker)


def _install(unpacked: Path, target: Path, staging: Path) -> None:
    """Rename the finished folder into place; a folder being replaced goes only once it is."""
    previous = staging / "previous"
    if target.exists():
        target.rename(previous)  # an empty folder, or one with our marker (--force)
    try:
        unpacked.rename(target)
    except OSError:
        if previous.exists():
            previous.rename(target)
        raise


def _clean_staging(staging: Path, target: Path, keep_verified: bool) -> None:
    """Remove what a failed call left: the unpacked folder, and verified files unless ``keep_verified``.

    ``.part`` files stay (the next call resumes them); a folder being replaced goes back in place.
    """
    if not staging.is_dir():
        return
    previous = staging / "previous"
    if previous.is_dir() and not target.exists():
        previous.rename(target)
    for item in staging.iterdir():
        if item.is_dir():
            _rmtree(item)
        elif not item.name.endswith(".part") and not keep_verified:
            item.unlink()
    if not any(staging.iterdir()):
        staging.rmdir()


def _rmtree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)


# -- download --------------------------------------------------------------------------------


class _Interrupted(Exception):
    """A transfer that stopped early; the next attempt resumes it."""


def _fetch(source: DataSource, file: RemoteFile, staging: Path, console: Any) -> Path:
    """Download ``file`` into ``staging`` (resuming a ``.part``), verify it, return its path."""
    dest = staging / file.filename
    if dest.exists() and file.sha256 and sha256_file(dest) == file.sha256:
        return dest  # verified by a call that was interrupted later
    url = source.url(file)
    part = dest.with_name(dest.name + ".part")
    started, resumed_at = time.monotonic(), _size(part)
    reason = ""
    with _progress(console) as progress:
        task = progress.add_task(file.filename, total=file.size or None, completed=resumed_at)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                _transfer(url, part, file, progress, task)
                break
            except _Interrupted as exc:
                reason = str(exc)
                if attempt < ATTEMPTS:
                    time.sleep(RETRY_DELAY_S * attempt)
        else:
            raise GanforgeError(
                f"download of {url} was interrupted {ATTEMPTS} times ({reason}); {_size(part)} bytes are "
                f"kept in {part}: run the same command again to resume"
            )
    got = _size(part)
    seconds = max(time.monotonic() - started, 1e-6)
    if file.sha256:
        digest = sha256_file(part)
        if digest != file.sha256:
            part.unlink()
            raise GanforgeError(
                f"{url}: sha256 mismatch: got {digest}, expected {file.sha256} (published in "
                f"{file.checksum_from or 'the source declaration'}); the download was removed"
            )
        check = "sha256 ok"
    else:
        if file.size and got != file.size:
            part.unlink()
            raise GanforgeError(f"{url}: got {got} bytes, expected {file.size}; the download was removed")
        check = NO_CHECKSUM
    part.rename(dest)
    speed = (got - resumed_at) / seconds
    resumed = f", resumed at {_human(resumed_at)}" if resumed_at else ""
    summary = (
        f"downloaded {file.filename}: {_human(got)} in {seconds:.1f} s ({_human(speed)}/s{resumed}); {check}"
    )
    console.print(summary, soft_wrap=True, markup=False, highlight=False)  # one line, also in logs
    return dest


def _transfer(url: str, part: Path, file: RemoteFile, progress: Any, task: Any) -> None:
    """One HTTP request that appends to ``part`` from its current size; raises _Interrupted if cut short."""
    have = _size(part)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part is as long as the file or longer: start over
            part.unlink()
            raise _Interrupted("the server refused to resume (HTTP 416)") from None
        raise GanforgeError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError | ConnectionResetError | ConnectionAbortedError):
            raise _Interrupted(f"{type(exc.reason).__name__}: {exc.reason}") from None
        raise GanforgeError(f"download of {url} failed: {exc.reason}") from None
    except (TimeoutError, ConnectionResetError, ConnectionAbortedError) as exc:
        raise _Interrupted(f"{type(exc).__name__}: {exc}") from None
    with response:
        start = _resume_offset(response, have)
        if start == 0 and have:
            part.unlink()  # the server ignored Range and sends the whole file: restart cleanly
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else (file.size or None)
        progress.update(task, total=total, completed=have)
        with open(part, "ab") as out:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (http.client.IncompleteRead, TimeoutError, ConnectionError) as exc:
                    raise _Interrupted(f"{type(exc).__name__} after {_size(part)} bytes") from None
                if not chunk:
                    break
                out.write(chunk)
                progress.advance(task, len(chunk))
    got = _size(part)
    if total is not None and got < total:
        raise _Interrupted(f"the connection closed after {got} of {total} bytes")
    if total is not None and got > total:
        part.unlink()
        raise _Interrupted(f"received {got} bytes, more than the {total} announced")


def _resume_offset(response: Any, have: int) -> int:
    """Where this response's body starts in the file: ``have`` for a matching 206, else 0."""
    if response.status != 206:
        return 0
    content_range = response.headers.get("Content-Range", "")  # "bytes START-END/TOTAL"
    try:
        start = int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        start = -1
    if start != have:
        raise _Interrupted(f"the server resumed at {content_range!r}, expected byte {have}")
    return start


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _progress(console: Any) -> Any:
    """A rich progress bar with size, speed and time left; disabled when stderr is not a terminal."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


# -- unpacking -------------------------------------------------------------------------------


def _unpack(file: RemoteFile, archive: Path, dest: Path) -> None:
    if file.format == "zip":
        _unpack_zip(file, archive, dest)
    elif file.format == "parquet":
        _unpack_parquet(file, archive, dest)
    else:
        raise GanforgeError(f"{file.filename}: unknown format {file.format!r}; expected 'zip' or 'parquet'")


def _safe_parts(name: str, archive: str) -> tuple[str, ...]:
    """A member name's path parts; an absolute name or a '..' part is an unsafe archive."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and ":" in path.parts[0]) or ".." in path.parts:
        raise GanforgeError(
            f"{archive}: unsafe member {name!r} (absolute or '..' path); nothing was unpacked"
        )
    return tuple(p for p in path.parts if p not in ("", "."))


def _is_image_name(name: str) -> bool:
    # macOS zips carry AppleDouble twins ("__MACOSX/...", "._x.jpg") that are not images
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("._")


def _destination(parts: tuple[str, ...], layout: dict[str, str]) -> str | None:
    """The dataset folder an archive member goes to (longest matching layout prefix), or None."""
    best = None
    for prefix, folder in layout.items():
        key = _safe_parts(prefix, "layout") if prefix else ()
        if parts[: len(key)] == key and len(parts) > len(key) and (best is None or len(key) > best[0]):
            best = (len(key), folder)
    return None if best is None else best[1]


def _unpack_zip(file: RemoteFile, archive: Path, dest: Path) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise GanforgeError(f"{file.filename}: not a zip archive") from None
    with zf:
        plan = []
        for info in zf.infolist():
            parts = _safe_parts(info.filename, file.filename)  # every member, before writing any
            if stat.S_ISLNK(info.external_attr >> 16):
                raise GanforgeError(
                    f"{file.filename}: member {info.filename!r} is a symbolic link; nothing was unpacked"
                )
            if info.is_dir() or not parts or "__MACOSX" in parts or not _is_image_name(parts[-1]):
                continue
            folder = _destination(parts, file.layout)
            if folder is not None:
                plan.append((info, folder, parts[-1]))
        for info, folder, name in plan:
            with zf.open(info) as src:
                _write_image(dest, folder, name, src.read(), f"{file.filename}:{info.filename}")


def _unpack_parquet(file: RemoteFile, archive: Path, dest: Path) -> None:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise GanforgeError(
            f"{file.filename} is a parquet file: unpacking it needs pyarrow (pip install 'ganforge[hub]')"
        ) from None
    try:
        table = pq.ParquetFile(archive)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid for a file that is not parquet
        raise GanforgeError(f"{file.filename}: not a parquet file ({type(exc).__name__})") from None
    columns = list(file.layout)
    names = table.schema_arrow.names
    missing = [c for c in columns if c not in names]
    if missing:
        raise GanforgeError(f"{file.filename}: no column(s) {', '.join(missing)}; it has {', '.join(names)}")
    row = 0
    for batch in table.iter_batches(columns=columns, batch_size=256):
        values = batch.to_pydict()
        for i in range(batch.num_rows):
            for column in columns:
                data, name = _parquet_image(values[column][i], row + i)
                _write_image(dest, file.layout[column], name, data, f"{file.filename}:{column}[{row + i}]")
        row += batch.num_rows


def _parquet_image(value: Any, row: int) -> tuple[bytes, str]:
    """(bytes, file name) of one cell: a Hub ``Image`` struct ``{bytes, path}`` or plain bytes."""
    data, original = (value.get("bytes"), value.get("path")) if isinstance(value, dict) else (value, None)
    if not isinstance(data, bytes | bytearray) or not data:
        raise GanforgeError(f"row {row}: expected image bytes, got {type(data).__name__}")
    base = PurePosixPath(str(original).replace("\\", "/")).name if original else ""
    if not base or not _is_image_name(base):
        base = f"{row:05d}{_sniff_extension(bytes(data))}"
    return bytes(data), base


def _sniff_extension(data: bytes) -> str:
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".png"


def _write_image(dest: Path, folder: str, name: str, data: bytes, origin: str) -> None:
    """Write one image; an identical copy under the same name is kept once, a different one is an error."""
    out = dest / folder / name if folder else dest / name
    if out.exists():
        if out.read_bytes() == data:
            return  # the archive holds this image twice
        raise GanforgeError(f"{origin}: two different images would both be {out.relative_to(dest)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)


# -- checks ----------------------------------------------------------------------------------


def count_images(folder: Path) -> int:
    """Image files directly in ``folder`` (0 if it does not exist)."""
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.is_file() and _is_image_name(p.name))


def _check_counts(source: DataSource, root: Path) -> dict[str, int]:
    counts = {folder: count_images(root / folder if folder else root) for folder in source.counts}
    wrong = [
        f"{folder or '.'}: {counts[folder]} (expected {expected})"
        for folder, expected in source.counts.items()
        if counts[folder] != expected
    ]
    if wrong:
        raise GanforgeError(
            f"{source.name}: unexpected image counts: {'; '.join(wrong)}; nothing was installed"
        )
    return counts


STRONG_EDGE = 40  # |dx| + |dy| of the grey levels, at 64 px
EDGE_SAMPLE = 32  # images per folder the orientation check looks at
EDGE_RATIO = 1.2  # how much denser the drawn folder's edges must be to decide


def edge_density(path: Path) -> float:
    """The share of pixels on strong edges, at 64x64: line art has more than photos.

    Anime faces are drawn with hard outlines and flat fills. Measured on 32 images per domain of
    selfie2anime, the medians are 0.17 (selfies) and 0.29 (anime) at 64 px, the size used here
    (0.064 and 0.18 at 128 px), and the ratio stays above 1.3 for 32 px copies.
    """
    from PIL import Image, ImageChops

    size = 64
    with Image.open(path) as img:
        grey = img.convert("L").resize((size, size), Image.BILINEAR)
    dx = ImageChops.difference(grey, ImageChops.offset(grey, 1, 0)).crop((1, 1, size, size))
    dy = ImageChops.difference(grey, ImageChops.offset(grey, 0, 1)).crop((1, 1, size, size))
    hist = ImageChops.add(dx, dy).histogram()  # offset wraps around: the cropped edge row goes
    return sum(hist[STRONG_EDGE:]) / sum(hist)


def _median_edge_density(folder: Path) -> float:
    files = sorted(p for p in folder.iterdir() if p.is_file() and _is_image_name(p.name))
    if not files:
        return 0.0
    step = max(1, len(files) // EDGE_SAMPLE)
    values = []
    for path in files[::step][:EDGE_SAMPLE]:
        try:
            values.append(edge_density(path))
        except (OSError, ValueError):  # an undecodable file says nothing about the domain
            continue
    return sorted(values)[len(values) // 2] if values else 0.0


def _ab_pairs(root: Path) -> Iterator[tuple[Path, Path]]:
    for a in sorted(root.iterdir()):
        if a.is_dir() and a.name.endswith("A") and (root / (a.name[:-1] + "B")).is_dir():
            yield a, root / (a.name[:-1] + "B")


def _orient(source: DataSource, root: Path) -> dict[str, Any]:
    """Apply ``source.orientation``: the declared layout, or A/B swapped where the drawings are in A."""
    if source.orientation == "declared":
        return {"method": "declared by the source"}
    pairs = list(_ab_pairs(root))
    if not pairs:
        raise GanforgeError(f"{source.name}: orientation 'detect-drawn-B' needs A/B folders; found none")
    a, b = max(pairs, key=lambda pair: count_images(pair[0]) + count_images(pair[1]))
    density = {a.name: _median_edge_density(a), b.name: _median_edge_density(b)}
    da, db = density[a.name], density[b.name]
    if db > 0 and db >= EDGE_RATIO * da:
        swapped = False
    elif da > 0 and da >= EDGE_RATIO * db:
        swapped = True
        for fa, fb in pairs:
            tmp = fa.with_name(fa.name + ".swap")
            fa.rename(tmp)
            fb.rename(fa)
            tmp.rename(fb)
    else:
        raise GanforgeError(
            f"{source.name}: cannot tell which of {a.name}/{b.name} holds the drawn images (edge density "
            f"{da:.3f} vs {db:.3f}); nothing was installed"
        )
    after = {a.name: db, b.name: da} if swapped else density  # by the folders' final names
    return {"method": "detected (edge density, docs/data.md)", "swapped": swapped, "edge_density": after}
