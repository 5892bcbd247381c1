"""Distribution distances over feature vectors: FID (Heusel et al. 2017) and KID (Binkowski et al. 2018).

Pure tensor functions: they take features or (mu, sigma) and know nothing of Inception or classifiers.
"""
from __future__ import annotations

import torch


def feature_rows(features: torch.Tensor) -> torch.Tensor:
    """[N, D] features in float64, with N >= 2: what a covariance needs."""
    f = features.double()
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need at least two feature vectors [N, D], got {list(f.shape)}")
    return f


def feature_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, covariance) of [N, D] features in float64; covariance with the N - 1 denominator, as np.cov."""
    f = feature_rows(features)
    mu = f.mean(0)
    d = f - mu
    return mu, d.T @ d / (f.shape[0] - 1)


def fid_from_stats(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """Frechet distance of two Gaussians (Heusel et al. 2017, eq. 6):

        |mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))

    tr((sigma1 sigma2)^(1/2)) is the sum of the square roots of the eigenvalues of sigma1 sigma2, which
    equal those of the symmetric PSD matrix s1^(1/2) sigma2 s1^(1/2): two symmetric eigendecompositions
    in float64 replace the non-symmetric scipy.linalg.sqrtm, with no complex round-off to discard.
    """
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    evals, evecs = torch.linalg.eigh(sigma1)
    root1 = (evecs * evals.clamp_min(0).sqrt()) @ evecs.T
    inner = torch.linalg.eigvalsh(root1 @ sigma2 @ root1)
    tr_covmean = inner.clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * tr_covmean)


def fid_against_stats(features: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """FID of [N, D] feature vectors against the Gaussian (mu2, sigma2), as fid_from_stats of their feature_stats.

    With N <= D (a per-epoch FID of 500 samples, ship --choose's 1,000, in 2,048 Inception dimensions) sigma1 is
    C^T C / (N - 1) for the centred features C, and the nonzero eigenvalues of sigma1 sigma2 are those of the N x N
    symmetric PSD matrix C sigma2 C^T / (N - 1): one N x N eigendecomposition gives tr((sigma1 sigma2)^(1/2)) in place
    of two of D x D (seconds each on a CPU), and tr(sigma1) is |C|^2 / (N - 1).
    """
    f, mu2, sigma2 = feature_rows(features), mu2.double(), sigma2.double()
    n = f.shape[0]
    if n > f.shape[1]:
        return fid_from_stats(*feature_stats(f), mu2, sigma2)
    mu1 = f.mean(0)
    c = f - mu1
    inner = torch.linalg.eigvalsh(c @ sigma2 @ c.T / (n - 1))
    tr_covmean = inner.clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + c.square().sum() / (n - 1) + sigma2.trace() - 2 * tr_covmean)


def fid_from_features(a: torch.Tensor, b: torch.Tensor) -> float:
    """FID between two sets of feature vectors; the smaller set takes fid_against_stats's N x N path."""
    small, large = sorted((a, b), key=len)
    return fid_against_stats(small, *feature_stats(large))


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """k(x, y) = (x.y / d + 1)^3, the kernel of Binkowski et al. 2018, section 4.

    The product runs in the inputs' dtype (float32 features: 100 subsets of 1,000 take seconds, not a
    minute, on a CPU) and the cube and the sums in float64, where KID's cancellation happens.
    """
    return (x @ y.T / x.shape[1] + 1).double() ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased estimate of MMD^2 (Gretton et al. 2012, eq. 3): kernel means without the diagonals."""
    m, n = x.shape[0], y.shape[0]
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    return ((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
            + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
            - 2 * kxy.mean())


def kid(a: torch.Tensor, b: torch.Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): mean and std of the unbiased MMD^2 over random subsets.

    Subsets of min(subset_size, len(a), len(b)) are drawn without replacement, as in the reference code
    (and torch-fidelity, StyleGAN's metrics). Unlike FID the estimator is unbiased, so small-n values are
    comparable across n.
    """
    size = min(subset_size, a.shape[0], b.shape[0])
    if size < 2:
        raise ValueError("KID needs at least two feature vectors on each side")
    g = torch.Generator().manual_seed(seed)
    values = torch.stack([
        mmd2_unbiased(a[torch.randperm(a.shape[0], generator=g)[:size].to(a.device)],
                      b[torch.randperm(b.shape[0], generator=g)[:size].to(b.device)])
        for _ in range(subsets)
    ])
    return float(values.mean()), float(values.std()) if subsets > 1 else 0.0
