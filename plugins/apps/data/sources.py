"""Bundled data sources for ``ganforge data get``: selfie2anime (two copies) and 64 px anime faces.

Every URL, revision and checksum below was read from the public source named beside it; a
checksum nobody published is never written here (docs/data.md lists where each came from).
"""

from __future__ import annotations

from .download import DataSource, RemoteFile

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


SOURCES = (SELFIE2ANIME, SELFIE2ANIME_HUB, ANIME_FACES_64)
