"""Convolutional VAE with batch norm: Kingma & Welling 2014, "Auto-Encoding Variational Bayes".

With `prior_components = K > 0` the images are not sampled from N(0, I) but from a K-component
full-covariance Gaussian mixture fitted to the encoder means of the training set after each epoch:
ex-post density estimation (Ghosh et al. 2020, "From Variational to Deterministic Autoencoders",
section 4). The aggregate posterior of a trained VAE is far from N(0, I), most of all with a small KL
weight, so decoding N(0, I) draws lands in regions the decoder never saw.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import Checks
from ..data import to_float
from ..objectives import ELBO
from ..registry import Family, register
from ..sampling import eval_mode
from .base import Generator, ModelConfig
from .blocks import ConvFeatures, ConvGenerator, stack_geometry


@dataclass(frozen=True)
class VAEConfig(ModelConfig):
    latent_dim: int = 16       # size of the Gaussian code z
    width: int = 32            # decoder channels at full resolution; the encoder mirrors it
    prior_components: int = 0  # 0: sample N(0, I); K: a K-component Gaussian mixture fitted to the codes

    def __post_init__(self):
        super().__post_init__()
        check = Checks(self, "model")
        stack_geometry(self.image_size)
        check.number("width", at_least=1, at_most=1024)
        if not 0 <= self.prior_components <= 1000:
            check.fail("prior_components", "must be 0 (N(0, I)) or a number of mixture components up to 1000, "
                       f"got {self.prior_components}")


class VAE(Generator):
    """`generate(z)` decodes a prior sample; `encode` gives the posterior N(mu, exp(logvar)).

    z is always standard normal, so seeds, truncation, sliders and interpolation work as for the GANs;
    `code(z)` turns it into a draw from the fitted prior, and `decode` takes codes (as `encode` gives).
    """

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        self.encoder = ConvFeatures(config.channels, config.image_size, config.width, norm="batch")
        flat = self.encoder.out_channels * self.encoder.out_size ** 2
        self.to_posterior = nn.Linear(flat, 2 * config.latent_dim)  # -> (mu, logvar)
        self.decoder = ConvGenerator(ModelConfig(config.image_size, config.channels, config.latent_dim), config.width)
        k, d = config.prior_components, config.latent_dim
        self.prior_components = k
        if k:  # until the first fit, K identical N(0, I) components: the standard prior
            self.register_buffer("prior_weights", torch.full((k,), 1.0 / k))
            self.register_buffer("prior_means", torch.zeros(k, d))
            # identities, by zeros and a filled diagonal: torch.eye on the meta device (checkpoint.load) imports
            # torch._dynamo
            self.register_buffer("prior_scale_tril", torch.zeros(k, d, d))
            self.prior_scale_tril.diagonal(dim1=-2, dim2=-1).fill_(1.0)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[1:] != self.image_shape:
            raise ValueError(f"expected images of shape [N, {', '.join(map(str, self.image_shape))}], got {list(x.shape)}")
        mu, logvar = self.to_posterior(self.encoder(x).flatten(1)).chunk(2, dim=1)
        return mu.float(), logvar.float()

    @torch.no_grad()
    def encode_means(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Posterior means of many images (uint8, or floats in [-1, 1]), encoded in batches, on the CPU."""
        device = next(self.parameters()).device
        means = [self.encode((to_float(chunk) if chunk.dtype == torch.uint8 else chunk).to(device))[0].cpu()
                 for chunk in images.split(batch_size)]
        return torch.cat(means) if means else torch.zeros(0, self.latent_dim)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, the reparameterisation trick (Kingma & Welling 2014, section 2.4)."""
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode_logits(self, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(code)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] from codes in the encoder's space (reconstruction: decode(encode(x)[0]))."""
        if code.ndim != 2 or code.shape[1] != self.latent_dim:
            raise ValueError(f"codes must have shape [N, {self.latent_dim}], got {list(code.shape)}")
        return torch.tanh(self.decode_logits(code).float())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self.code(z))

    # ---- the fitted prior ------------------------------------------------------------------------

    def split_noise(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(component, eps): z[:, 0] picks a component by where Phi(z[:, 0]) falls among the cumulative mixture
        weights, and its position inside that component's interval, mapped back through Phi^-1, is eps[:, 0].
        eps is again exactly N(0, I) and independent of the component, so code(z) is an exact mixture draw.
        The CDF arithmetic runs in float64 on the CPU (one number per sample; MPS has no float64)."""
        w = self.prior_weights.double().cpu()
        upper = w.cumsum(0)
        u = torch.special.ndtr(z[:, 0].double().cpu())
        k = torch.searchsorted(upper, u, right=True).clamp(max=len(w) - 1)
        within = ((u - (upper[k] - w[k])) / w[k]).clamp(1e-12, 1 - 1e-12)
        eps0 = torch.special.ndtri(within).to(z.device, z.dtype)
        return k.to(z.device), torch.cat([eps0[:, None], z[:, 1:]], dim=1)

    def join_noise(self, k: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The inverse of split_noise."""
        w, k = self.prior_weights.double().cpu(), k.cpu()
        u = w.cumsum(0)[k] - w[k] + w[k] * torch.special.ndtr(eps[:, 0].double().cpu())
        z0 = torch.special.ndtri(u.clamp(1e-300, 1 - 1e-16)).to(eps.device, eps.dtype)
        return torch.cat([z0[:, None], eps[:, 1:]], dim=1)

    def code(self, z: torch.Tensor) -> torch.Tensor:
        """The code that standard-normal noise z stands for under the prior (z itself for N(0, I))."""
        if not self.prior_components:
            return z
        k, eps = self.split_noise(z.float())
        return self.prior_means[k] + (self.prior_scale_tril[k] @ eps[:, :, None]).squeeze(2)

    def noise(self, code: torch.Tensor) -> torch.Tensor:
        """The z whose code is `code`, taking the mixture component most responsible for it: the inverse of
        `code`, so generate(noise(mu)) equals decode(mu). Used to start a projection from the encoder mean."""
        if not self.prior_components:
            return code
        code = code.float()
        diff = code[:, None, :] - self.prior_means[None]                                                    # [N, K, d]
        eps = torch.linalg.solve_triangular(self.prior_scale_tril, diff.permute(1, 2, 0), upper=False).permute(2, 0, 1)
        log_det = self.prior_scale_tril.diagonal(dim1=1, dim2=2).log().sum(1)
        k = (self.prior_weights.log() - log_det - 0.5 * eps.square().sum(2)).argmax(1)
        return self.join_noise(k, eps[torch.arange(len(code), device=code.device), k])

    def truncate(self, z: torch.Tensor, truncation: float) -> torch.Tensor:
        """Scale the noise towards the mode of its component; the component stays the same."""
        if not self.prior_components:
            return super().truncate(z, truncation)
        k, eps = self.split_noise(z.float())
        return self.join_noise(k, eps * truncation)

    @torch.no_grad()
    def fit_prior_to(self, images: torch.Tensor) -> None:
        """Fit the mixture to the encoder means of `images` (a whole training split), batch norm on running stats."""
        with eval_mode(self):
            self.fit_prior(self.encode_means(images))

    @torch.no_grad()
    def fit_prior(self, codes: torch.Tensor, seed: int = 0) -> None:
        """Fit the mixture to codes [N, latent_dim] by EM (scikit-learn, k-means initialisation)."""
        from sklearn.mixture import GaussianMixture
        from threadpoolctl import threadpool_limits

        gm = GaussianMixture(self.prior_components, covariance_type="full", random_state=seed)
        # One BLAS thread: EM's many small products gain little from two (60,000 codes, 50 components: 12.6 s on
        # one thread, 11.8 s on two), and when another process holds a core, OpenBLAS threads waiting on each other
        # made a 4,500-code fit 190x slower (60 s against 0.32 s on one thread; 2-core AVX2 CPU).
        with threadpool_limits(1, user_api="blas"):
            gm.fit(codes.detach().double().cpu().numpy())
        order = gm.weights_.argsort()[::-1].copy()  # heaviest first: the order z[:, 0] walks through them
        self.prior_weights.copy_(torch.from_numpy(gm.weights_[order] / gm.weights_.sum()))
        self.prior_means.copy_(torch.from_numpy(gm.means_[order]))
        self.prior_scale_tril.copy_(torch.linalg.cholesky(torch.from_numpy(gm.covariances_[order])))


register(Family(
    name="vae",
    title="VAE",
    paper="Kingma & Welling 2014",
    arxiv="1312.6114",
    paper_title="Auto-Encoding Variational Bayes",
    summary="Learns to compress an image into a small Gaussian code z and decode it back; sampling z gives new images.",
    config_cls=VAEConfig,
    build_generator=VAE,
    objective=ELBO,
    has_encoder=True,
    kind="vae",
))
