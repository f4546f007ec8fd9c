"""FID and KID: distances between the feature distributions of real and generated images.

Both work on feature arrays ``[N, D]`` (by default Inception-v3 pool features, see
``inception.py``) and compute in float64.

* FID (Heusel et al. 2017) is the Fréchet distance between Gaussians fitted to the two sets:
  ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``, the formula of pytorch-fid's
  ``calculate_frechet_distance``. The trace of the matrix square root is computed from
  eigenvalues (no scipy needed at run time): ``S1 S2`` is similar to the symmetric
  ``S1^(1/2) S2 S1^(1/2)``, so its square root's trace is the sum of the square roots of that
  matrix's eigenvalues. These are real by construction; round-off negatives are clipped to 0,
  which plays the part of pytorch-fid's dropping of tiny imaginary parts. As in pytorch-fid, a
  non-finite result is retried with ``eps`` added to both covariance diagonals. With fewer
  images than feature dimensions the covariances are singular, where scipy's ``sqrtm`` (and so
  pytorch-fid) loses accuracy or fails on imaginary parts; this computation stays exact, and
  cheap (see :func:`fid_from_features`).
* KID (Binkowski et al. 2018) is the unbiased MMD^2 estimate with the polynomial kernel
  ``k(x, y) = (x.y / D + 1)^3``, reported x100 (``kid_x100``, ``kid_x100_std``), the scale
  U-GAT-IT's tables use. Two estimators (the protocol picks one):

  - ``subsets`` (default; clean-fid, torch-fidelity): the mean and standard deviation over
    ``subsets`` (100) random subsets of ``m = min(subset_size, N_real, N_fake)`` images per set
    (``subset_size`` 1000): the standard 100 subsets of 1000, or subsets as large as the smaller
    set when there are fewer images, as clean-fid does (torch-fidelity refuses instead). Subsets
    are drawn like torch-fidelity: ``numpy.random.RandomState(seed).choice(n, m,
    replace=False)``, first set then second, once per subset. When both sets hold ``m`` images
    every subset is the whole set: the mean is the full-set estimate and the std is 0 (a spread
    over subsets, not an error bar).
  - ``blocks`` (TF-GAN's ``kernel_classifier_distance_and_std``, U-GAT-IT's tables): both sets,
    in file order, are cut into ``ceil(max(N_real, N_fake) / block_size)`` consecutive blocks of
    near-equal size (the larger blocks last); the value is the mean of the per-block estimates
    and ``_std`` is their standard error ``sqrt(var / n_blocks)`` (Bessel-corrected variance).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ganforge.errors import GanforgeError


def as_features(x: Any) -> np.ndarray:
    """A ``[N, D]`` float64 numpy array from a tensor or array."""
    if hasattr(x, "detach"):
        x = x.detach().to("cpu").double().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise GanforgeError(f"features must be a [N, D] array, got shape {tuple(arr.shape)}")
    return arr


def feature_statistics(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``numpy.cov``, N - 1 normalisation) of ``[N, D]`` features."""
    f = as_features(features)
    if f.shape[0] < 2:
        raise GanforgeError(f"FID needs at least 2 images per set, got {f.shape[0]}")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``Tr((sigma1 sigma2)^(1/2))`` for symmetric positive semi-definite matrices."""
    w, v = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    root = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    m = root @ sigma2 @ root
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(ev, 0.0, None)).sum())


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = 1e-6) -> float:
    """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise GanforgeError(f"FID: feature sizes differ ({mu1.shape[0]} vs {mu2.shape[0]})")
    diff = mu1 - mu2
    with np.errstate(all="ignore"):
        tr_covmean = _trace_sqrt_product(sigma1, sigma2)
    if not np.isfinite(tr_covmean):
        offset = np.eye(sigma1.shape[0]) * eps
        tr_covmean = _trace_sqrt_product(sigma1 + offset, sigma2 + offset)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def fid_from_features(real: Any, fake: Any, eps: float = 1e-6) -> float:
    """FID between two ``[N, D]`` feature sets.

    With few images (``N1 * N2 < D^2``) the same value comes cheaper from the centred features
    ``A``, ``B``: ``S1 S2`` has the non-zero eigenvalues of ``M M^T / c`` with ``M = A B^T`` and
    ``c = (N1 - 1)(N2 - 1)``, so ``Tr((S1 S2)^(1/2))`` is the sum of ``M``'s singular values over
    ``sqrt(c)`` (no D x D decomposition).
    """
    x, y = as_features(real), as_features(fake)
    (n1, d), (n2, d2) = x.shape, y.shape
    if d != d2:
        raise GanforgeError(f"FID: feature sizes differ ({d} vs {d2})")
    if min(n1, n2) < 2:
        raise GanforgeError(f"FID needs at least 2 images per set, got {min(n1, n2)}")
    if n1 * n2 >= d * d:
        mu1, s1 = feature_statistics(x)
        mu2, s2 = feature_statistics(y)
        return frechet_distance(mu1, s1, mu2, s2, eps)
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    a, b = x - mu1, y - mu2
    tr1, tr2 = float((a * a).sum()) / (n1 - 1), float((b * b).sum()) / (n2 - 1)
    tr_covmean = float(np.linalg.svd(a @ b.T, compute_uv=False).sum()) / np.sqrt((n1 - 1) * (n2 - 1))
    diff = mu1 - mu2
    return float(diff.dot(diff) + tr1 + tr2 - 2.0 * tr_covmean)


def _poly_kernel(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef0: float) -> np.ndarray:
    return (x @ y.T * gamma + coef0) ** degree


def _mmd2_unbiased(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    m = k_xx.shape[0]
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kid_from_features(
    real: Any,
    fake: Any,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    coef0: float = 1.0,
    seed: int = 2020,
) -> tuple[float, float]:
    """KID (unbiased polynomial-kernel MMD^2) between two feature sets: (mean, std) over subsets."""
    x, y = as_features(real), as_features(fake)
    if x.shape[1] != y.shape[1]:
        raise GanforgeError(f"KID: feature sizes differ ({x.shape[1]} vs {y.shape[1]})")
    n1, n2 = x.shape[0], y.shape[0]
    m = min(subset_size, n1, n2)
    if m < 2:
        raise GanforgeError(f"KID needs at least 2 images per set, got {min(n1, n2)}")
    gamma = 1.0 / x.shape[1]
    rng = np.random.RandomState(seed)
    # Small sets: the full kernel matrices once, then index; large ones: per subset.
    full = n1 * n1 + n2 * n2 + n1 * n2 <= 12_000_000
    if full:
        k_xx, k_yy = _poly_kernel(x, x, degree, gamma, coef0), _poly_kernel(y, y, degree, gamma, coef0)
        k_xy = _poly_kernel(x, y, degree, gamma, coef0)
    values = np.zeros(max(1, subsets))
    for i in range(len(values)):
        ix = rng.choice(n1, m, replace=False)
        iy = rng.choice(n2, m, replace=False)
        if full:
            values[i] = _mmd2_unbiased(k_xx[np.ix_(ix, ix)], k_yy[np.ix_(iy, iy)], k_xy[np.ix_(ix, iy)])
        else:
            xs, ys = x[ix], y[iy]
            values[i] = _mmd2_unbiased(
                _poly_kernel(xs, xs, degree, gamma, coef0),
                _poly_kernel(ys, ys, degree, gamma, coef0),
                _poly_kernel(xs, ys, degree, gamma, coef0),
            )
    return float(values.mean()), float(values.std())


def _block_sizes(n: int, n_blocks: int) -> list[int]:
    base = n // n_blocks
    plus_one = n - base * n_blocks
    return [base] * (n_blocks - plus_one) + [base + 1] * plus_one


def kid_blocks_from_features(
    real: Any, fake: Any, block_size: int = 10, degree: int = 3, coef0: float = 1.0
) -> tuple[float, float]:
    """KID by TF-GAN's block estimator: (mean over blocks, standard error of that mean)."""
    x, y = as_features(real), as_features(fake)
    if x.shape[1] != y.shape[1]:
        raise GanforgeError(f"KID: feature sizes differ ({x.shape[1]} vs {y.shape[1]})")
    n_blocks = -(-max(len(x), len(y)) // block_size)
    if min(len(x), len(y)) < 2 * n_blocks:
        raise GanforgeError(
            f"KID (blocks of {block_size}): needs at least 2 images per block, got {min(len(x), len(y))} "
            f"images for {n_blocks} blocks"
        )
    gamma = 1.0 / x.shape[1]
    ix = np.cumsum([0, *_block_sizes(len(x), n_blocks)])
    iy = np.cumsum([0, *_block_sizes(len(y), n_blocks)])
    values = np.zeros(n_blocks)
    for i in range(n_blocks):
        xs, ys = x[ix[i] : ix[i + 1]], y[iy[i] : iy[i + 1]]
        k_xx = _poly_kernel(xs, xs, degree, gamma, coef0)
        k_yy = _poly_kernel(ys, ys, degree, gamma, coef0)
        k_xy = _poly_kernel(xs, ys, degree, gamma, coef0)
        m, n = len(xs), len(ys)
        values[i] = (
            (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
            + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
            - 2.0 * k_xy.mean()
        )
    stderr = float(np.sqrt(values.var(ddof=1) / n_blocks)) if n_blocks > 1 else float("nan")
    return float(values.mean()), stderr


class FID:
    """Fréchet Inception Distance between real and generated images (lower is better).

    A distribution metric: ``uses = "features"``, so ``compute(real, fake)`` takes ``[N, D]``
    features from the feature extractor named by ``extractor`` (built with ``weights`` when
    given). Returns ``{"fid": value}``.
    """

    uses = "features"

    def __init__(self, extractor: str = "inception", weights: str = "", eps: float = 1e-6) -> None:
        self.extractor, self.weights, self.eps = extractor, weights, eps

    def compute(self, real: Any, fake: Any) -> dict[str, float]:
        return {"fid": fid_from_features(real, fake, self.eps)}


class KID:
    """Kernel Inception Distance x100: unbiased polynomial MMD, mean and spread (lower is better).

    A distribution metric like :class:`FID`. Returns ``{"kid_x100": mean * 100,
    "kid_x100_std": spread * 100}``: the standard deviation over subsets (``estimator =
    "subsets"``) or the standard error over blocks (``estimator = "blocks"``).
    """

    uses = "features"

    def __init__(
        self,
        extractor: str = "inception",
        weights: str = "",
        estimator: Literal["subsets", "blocks"] = "subsets",
        subsets: int = 100,
        subset_size: int = 1000,
        block_size: int = 10,
        degree: int = 3,
        coef0: float = 1.0,
        seed: int = 2020,
    ) -> None:
        if subsets < 1 or subset_size < 2 or block_size < 2:
            raise GanforgeError(
                f"kid: subsets must be >= 1, subset_size and block_size >= 2 (got {subsets}, "
                f"{subset_size}, {block_size})"
            )
        self.extractor, self.weights, self.estimator = extractor, weights, estimator
        self.subsets, self.subset_size, self.block_size = subsets, subset_size, block_size
        self.degree, self.coef0, self.seed = degree, coef0, seed

    def compute(self, real: Any, fake: Any) -> dict[str, float]:
        if self.estimator == "blocks":
            mean, spread = kid_blocks_from_features(real, fake, self.block_size, self.degree, self.coef0)
        else:
            mean, spread = kid_from_features(
                real, fake, self.subsets, self.subset_size, self.degree, self.coef0, self.seed
            )
        return {"kid_x100": mean * 100.0, "kid_x100_std": spread * 100.0}
