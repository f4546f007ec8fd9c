"""Bundled data sources for ``ganforge data get``: selfie2anime (two copies), 64 px anime faces,
the pix2pix pairs facades and edges2shoes, and CIFAR-10.

Every URL, revision and checksum below was read from the public source named beside it; a
checksum nobody published is never written here (docs/data.md lists where each came from).
"""

from __future__ import annotations

from .download import DataSource, ImageRecords, RemoteFile

SELFIE2ANIME_COUNTS = {"trainA": 3400, "trainB": 3400, "testA": 100, "testB": 100}

# The zip that LS4GAN/uvcgan2's scripts/download_dataset.sh downloads (it took the URL from
# Council-GAN's scripts/download.sh). The script, at uvcgan2 commit 871b2b9, gives the URL
# https://www.dropbox.com/s/9lz6gwwwyyxpdnn/selfie2anime.zip and the sha256 below; "?dl=1" is
# Dropbox's switch for the file itself instead of a preview page (Council-GAN writes "?dl=0").
# A Dropbox link has no revision: the sha256 pins the content.
# The zip holds selfie2anime/{trainA,trainB,testA,testB} with A and B swapped relative to
# U-GAT-IT (A = anime): uvcgan2 swaps them back after unzipping ("CouncilGAN mangled dataset"),
# and Council-GAN's README translates selfies from testB. The layout below does the same.
SELFIE2ANIME = DataSource(
    name="selfie2anime",
    description="selfie2anime (U-GAT-IT): 3,400 + 3,400 train and 100 + 100 test faces, the zip uvcgan2 uses",
    homepage="https://github.com/taki0112/UGATIT",
    license="not stated by the source (research dataset of the U-GAT-IT paper)",
    revision="none (a Dropbox link); the sha256 from LS4GAN/uvcgan2@871b2b9 pins the content",
    base_url="https://www.dropbox.com/",
    files=(
        RemoteFile(
            path="s/9lz6gwwwyyxpdnn/selfie2anime.zip?dl=1",
            sha256="2e8fe7563088971696d29af9f5153772733ac879c155c709b1aad741735ad7bc",
            checksum_from="https://github.com/LS4GAN/uvcgan2/blob/871b2b931f0b6c1fa012a3d658e830f3f4c6023c/"
            "scripts/download_dataset.sh",
            format="zip",
            layout={
                "selfie2anime/trainA": "trainB",
                "selfie2anime/trainB": "trainA",
                "selfie2anime/testA": "testB",
                "selfie2anime/testB": "testA",
            },
        ),
    ),
    counts=SELFIE2ANIME_COUNTS,
    orientation="declared",
    notes="A and B are swapped in the zip (A = anime); installed as U-GAT-IT's trainA = selfies",
)

# The Hub copy: two parquet files with columns imageA and imageB (dataset_infos.json at commit
# 7d40964; train has 3,400 rows). The sha256 values are the Git LFS details on each file's page
# at commit 3e14d35530f497711a4f71b922826883611a5710, the last commit that touched data/ (main,
# 7d40964, only changed dataset_infos.json). The source does not say which column holds the
# selfies, so the orientation is measured after unpacking.
HUB_REVISION = "3e14d35530f497711a4f71b922826883611a5710"
HUB_PAGE = f"https://huggingface.co/datasets/huggan/selfie2anime/blob/{HUB_REVISION}"
SELFIE2ANIME_HUB = DataSource(
    name="selfie2anime-hub",
    folder="selfie2anime",
    description="selfie2anime from the Hub's huggan/selfie2anime parquet files (needs pyarrow)",
    homepage="https://huggingface.co/datasets/huggan/selfie2anime",
    license="not stated by the source",
    revision=f"huggan/selfie2anime@{HUB_REVISION}",
    base_url="https://huggingface.co/",
    files=(
        RemoteFile(
            path=f"datasets/huggan/selfie2anime/resolve/{HUB_REVISION}/data/train-00000-of-00001.parquet",
            sha256="41ea0c225407c9ad628dcbd205fe437981bd650db97e0dd52a287e41ce36650c",
            checksum_from=f"{HUB_PAGE}/data/train-00000-of-00001.parquet",
            format="parquet",
            layout={"imageA": "trainA", "imageB": "trainB"},
        ),
        RemoteFile(
            path=f"datasets/huggan/selfie2anime/resolve/{HUB_REVISION}/data/test-00000-of-00001.parquet",
            sha256="280255af83b4ab223c452ff8cc54a3cf6a7187e601372d436231aece21fa53af",
            checksum_from=f"{HUB_PAGE}/data/test-00000-of-00001.parquet",
            format="parquet",
            layout={"imageA": "testA", "imageB": "testB"},
        ),
    ),
    counts=SELFIE2ANIME_COUNTS,
    orientation="detect-drawn-B",
    notes="which column holds the selfies is not documented: measured by edge density (docs/data.md)",
)

# 64x64 anime faces for the DCGAN recipe: huggan/anime-faces, the Hub copy of Kaggle's
# "anime-faces" (21,551 faces from getchu.com, 64x64 PNG). data.zip was added in commit
# 67ebcf8c69b45feb3883d695f04227078a6c9da9, whose Git LFS pointer gives the sha256 and the size
# below. The zip reportedly holds each face twice (43,102 files: a folder and a copy of it inside
# it); identical copies are unpacked once, into one flat folder.
ANIME_REVISION = "67ebcf8c69b45feb3883d695f04227078a6c9da9"
ANIME_FACES_64 = DataSource(
    name="anime_faces_64",
    description="21,551 anime faces, 64x64 (getchu.com, Kaggle 'anime-faces') from huggan/anime-faces",
    homepage="https://huggingface.co/datasets/huggan/anime-faces",
    license="CC0-1.0 (as tagged on the Hub)",
    revision=f"huggan/anime-faces@{ANIME_REVISION}",
    base_url="https://huggingface.co/",
    files=(
        RemoteFile(
            path=f"datasets/huggan/anime-faces/resolve/{ANIME_REVISION}/data.zip",
            sha256="b50c3f2e1bbad0d119f8c5748a0d01138cb56152fb8997ce5c8b139129bf3c23",
            checksum_from=f"https://huggingface.co/datasets/huggan/anime-faces/commit/{ANIME_REVISION}",
            size=462126466,
            format="zip",
            layout={"": ""},
        ),
    ),
    counts={"": 21551},
    notes="identical duplicate images in the zip are unpacked once",
)

# CIFAR-10's binary version, from its authors' page (https://www.cs.toronto.edu/~kriz/cifar.html):
# the page gives the URL and the md5 c32a1d4ab5d03f1284b67883e8d87530 ("CIFAR-10 binary version
# (suitable for C programs)", 162 MB). tensorflow/datasets pins the same URL to the size and sha256
# below (tensorflow_datasets/url_checksums/cifar10.txt at commit 333639b); aria-ml/dataeval
# (src/dataeval/utils/data/datasets/_cifar10.py at bf415bf) downloads it with the same md5. Both
# are verified. The binary version needs no unpickling (ganforge never unpickles data): each of
# data_batch_1..5.bin (train) and test_batch.bin (test) is 10,000 records of 1 label byte and
# 3,072 pixel bytes (1,024 red, then green, then blue, row by row), and batches.meta.txt names
# the classes in label order. Each record becomes train/<class>/data_batch_N-INDEX.png (or
# test/...): the layout the class-folders dataset reads (data.split = "train").
CIFAR10_BATCHES = "cifar-10-batches-bin"
CIFAR10 = DataSource(
    name="cifar10",
    description="CIFAR-10: 50,000 train and 10,000 test images, 32x32, 10 classes (the binary version)",
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    license="not stated by the source (research dataset; cite Krizhevsky 2009)",
    revision="none (a plain URL); the sha256 and size from tensorflow/datasets@333639b and the "
    "authors' md5 pin the content",
    base_url="https://www.cs.toronto.edu/",
    files=(
        RemoteFile(
            path="~kriz/cifar-10-binary.tar.gz",
            sha256="c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
            checksum_from="https://github.com/tensorflow/datasets/blob/333639b37af6c6fedf3610a4a2d42f1c6ef6f7d5/"
            "tensorflow_datasets/url_checksums/cifar10.txt",
            md5="c32a1d4ab5d03f1284b67883e8d87530",
            md5_from="https://www.cs.toronto.edu/~kriz/cifar.html",
            size=170052171,
            format="tar",
            layout={
                **{f"{CIFAR10_BATCHES}/data_batch_{i}.bin": "train" for i in range(1, 6)},
                f"{CIFAR10_BATCHES}/test_batch.bin": "test",
            },
            records=ImageRecords(classes=f"{CIFAR10_BATCHES}/batches.meta.txt", height=32, width=32),
        ),
    ),
    counts={"train": 50000, "test": 10000},
    notes="train/ and test/ hold one folder per class: data.name = 'class-folders', data.split = 'train'",
)

# facades, paired (pix2pix): CycleGAN's copy of the CMP facades, one zip with facades/{trainA,
# trainB,testA,testB}; the official download_cyclegan_dataset.sh (junyanz/pytorch-CycleGAN-and-
# pix2pix at d5a836703c4cd4f3070f70d2fe7cfdac91835af5) takes it from the URL below. The sha256 and
# the size are TensorFlow Datasets' pinned checksums for that URL (url_checksums/cycle_gan.txt at
# commit 333639b; the same at ffe36c8). The official docs/datasets.md (at 9fc9eef) gives 400
# training images; the test folders' counts are published nowhere, so only train is counted. The
# two folders hold the same 400 scenes: trainA the photos, trainB the label maps (the official
# scripts/test_single.sh, at 104f953, feeds facades/testB to the label -> photo pix2pix model with
# --direction BtoA). The Hub's huggan/facades (one parquet of 606 rows) has no sha256 in any
# source this project could read, so it is not offered.
FACADES_CHECKSUMS = (
    "https://github.com/tensorflow/datasets/blob/333639b37af6c6fedf3610a4a2d42f1c6ef6f7d5/"
    "tensorflow_datasets/url_checksums/cycle_gan.txt"
)
FACADES = DataSource(
    name="facades",
    description="CMP facades (pix2pix): 400 aligned photo / label-map training pairs, CycleGAN's zip",
    homepage="https://cmp.felk.cvut.cz/~tylecr1/facade/",
    license="not stated by the source (research dataset, CMP Facade Database)",
    revision="none (a plain URL); the sha256 from tensorflow/datasets@333639b pins the content",
    base_url="https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/",
    files=(
        RemoteFile(
            path="facades.zip",
            sha256="9a31ebf3a31b9b5cd195dd5bf62e9308e00cb94604d1019e3889ac84248695c0",
            checksum_from=FACADES_CHECKSUMS,
            size=35135868,
            format="zip",
            layout={
                "facades/trainA": "trainA",
                "facades/trainB": "trainB",
                "facades/testA": "testA",
                "facades/testB": "testB",
            },
        ),
    ),
    counts={"trainA": 400, "trainB": 400},
    orientation="declared",
    notes="trainA = photos, trainB = label maps, pairs matched by name (paired-folders, direction BtoA)",
)

# edges2shoes, paired (pix2pix): the Hub's huggan/edges2shoes, whose dataset_infos.json (at
# 6d36104) declares columns imageA and imageB and one train split of 50,025 rows (the official
# 49,825 train + 200 val pairs). Its main branch has six parquet files, of which the index this
# project reads shows the LFS sha256 of five; the parquet conversion branch at commit f1a7e13
# holds the same rows in three files whose sha256 and sizes the commit page publishes, so those
# are the files used. Rows are named by number (imageA[i] and imageB[i] share a name), so the two
# folders pair by name. imageA holds the edges and imageB the shoes, the order of the official
# A|B images (the Hub card does not say).
E2S_REVISION = "f1a7e132970731079d6851853d3aca1537c9520a"
E2S_PAGE = f"https://huggingface.co/datasets/huggan/edges2shoes/commit/{E2S_REVISION}"
E2S_FILES = (
    ("edca84811571224dfc80db48cbfcde238a18e79d4f046868b4de836a49b236bc", 929475033),
    ("8c83a3fcd275b1d8b1ca36735cebad499bdf2fb238ccc88d82eb7b396fb4dd84", 934246798),
    ("cf5efbfe5565179b65dc7461bfb9f028fd75b0d58e237bf3d6e7553304f44e2b", 934896506),
)
EDGES2SHOES = DataSource(
    name="edges2shoes",
    description="edges2shoes (pix2pix): 50,025 aligned edge / shoe pairs, 256 px, from huggan/edges2shoes",
    homepage="https://huggingface.co/datasets/huggan/edges2shoes",
    license="not stated by the source (UT Zappos50K research dataset)",
    revision=f"huggan/edges2shoes@{E2S_REVISION} (refs/convert/parquet)",
    base_url="https://huggingface.co/",
    files=tuple(
        RemoteFile(
            path=(
                f"datasets/huggan/edges2shoes/resolve/{E2S_REVISION}/huggan--edges2shoes/"
                f"parquet-train-{i:05d}-of-00003.parquet"
            ),
            sha256=digest,
            checksum_from=E2S_PAGE,
            size=size,
            format="parquet",
            layout={"imageA": "trainA", "imageB": "trainB"},
            row_names=f"{i}-",
        )
        for i, (digest, size) in enumerate(E2S_FILES)
    ),
    counts={"trainA": 50025, "trainB": 50025},
    orientation="declared",
    notes="trainA = edges, trainB = shoes, pairs share a file name (paired-folders); needs pyarrow",
)


SOURCES = (SELFIE2ANIME, SELFIE2ANIME_HUB, ANIME_FACES_64, FACADES, EDGES2SHOES, CIFAR10)
