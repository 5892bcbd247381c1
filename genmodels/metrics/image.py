"""Per-image MSE and SSIM for batches in [-1, 1].

Protocol (one for both, named in metrics.json): images are mapped to [0, 1] first, so MSE is the mean
squared error on a [0, 1] scale and SSIM uses data_range 1. SSIM is Wang et al. 2004 with the 11-tap
Gaussian window of sigma 1.5 and population (not sample) covariances: scikit-image's
`structural_similarity(a, b, data_range=1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
channel_axis=0)`, which tests/test_metrics.py checks this against.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5   # scikit-image's choice: radius int(3.5 * 1.5 + 0.5) = 5, an 11-tap window
SSIM_K1, SSIM_K2 = 0.01, 0.03  # Wang et al. 2004, eq. 7 and 9
SSIM_PROTOCOL = ("SSIM (Wang et al. 2004) on images scaled to [0, 1], data_range 1, 11-tap Gaussian window "
                 "sigma 1.5, population covariance, mean over the valid (unpadded) window positions and channels; "
                 "equals scikit-image structural_similarity(gaussian_weights=True, use_sample_covariance=False)")
MSE_PROTOCOL = "mean squared error per image on images scaled to [0, 1]"


def check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"expected two image batches [N, C, H, W] of one shape, got {list(a.shape)} and {list(b.shape)}")


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image on the [0, 1] scale: Tensor[N]."""
    check_pair(a, b)
    return ((a.float() - b.float()) / 2).square().flatten(1).mean(1)


def gaussian_window(sigma: float = SSIM_SIGMA, truncate: float = SSIM_TRUNCATE) -> torch.Tensor:
    """The normalised 1-D Gaussian taps scipy.ndimage.gaussian_filter uses."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004): Tensor[N], 1 for identical images.

    Only window positions that lie wholly inside the image are averaged; scikit-image filters with
    reflect padding and then crops exactly those border positions away, so a valid convolution gives the
    same numbers without padding. Computed in float64: the variance terms are differences of near-equal
    means.
    """
    check_pair(a, b)
    w = gaussian_window().to(a.device)
    r = (w.numel() - 1) // 2
    n, c, h, wd = a.shape
    if h <= 2 * r or wd <= 2 * r:
        raise ValueError(f"SSIM needs images larger than {2 * r + 1}x{2 * r + 1}, got {h}x{wd}")
    x = (a.detach().double() + 1) / 2
    y = (b.detach().double() + 1) / 2

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable Gaussian, one depthwise pass per axis
        t = F.conv2d(t, w.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
        return F.conv2d(t, w.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2  # (K * data_range)^2 with data_range 1
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).float()

