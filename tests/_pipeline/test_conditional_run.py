"""The host pipeline of Conditional Vendi (clipcore._pipeline.conditional_run, clipcore._pipeline.mapped):
the auto rule as a table, the σ resolution per modality, one column (or a row map of both) of a paired
source walked as a one-set source, and iterators spooled to files."""

from __future__ import annotations

import numpy as np
import pytest

from clipcore._pipeline import conditional_run as CR
from clipcore._pipeline.inputs import paired_inputs
from clipcore._pipeline.mapped import MappedSource, spool
from clipcore._pipeline.plan import DEFAULT_LANDMARKS, EXACT_ROWS, FROBENIUS_ROWS
from clipcore.kernels import median_sigma
from clipcore.product_kernel import scaled_concat, tensor_features
from clipcore.sources import paired_source

INF = float("inf")
pytestmark = pytest.mark.filterwarnings("ignore::clipcore._validate.DimensionMismatchWarning")


def plan(kernel="gaussian", n=400, d=32, streamed=False, in_memory=True, order=1.0, top_k=None, method="auto",
         landmarks=False, rff_features=None, mesh=False, dt=None):
    return CR.plan_conditional(kernel=kernel, n=n, d_images=d, d_texts=d if dt is None else dt, streamed=streamed,
                               in_memory=in_memory, order=order, top_k=top_k, method=method, landmarks=landmarks,
                               rff_features=rff_features, mesh=mesh)


BIG = EXACT_ROWS + 1


@pytest.mark.parametrize("kw,path", [
    (dict(), "dual"),
    (dict(order=2.0), "dual"),
    (dict(n=FROBENIUS_ROWS + 1, order=2.0), "frobenius"),
    (dict(n=FROBENIUS_ROWS + 1, order=2.0, top_k=10), "dual"),
    (dict(n=EXACT_ROWS), "dual"),
    (dict(n=BIG), "nystrom"),  # SCE's crossover (three n×n eigenvalue problems), below Vendi's
    (dict(n=BIG, order=INF), "nystrom"),
    (dict(n=10**6, streamed=True, in_memory=False), "nystrom"),
    (dict(n=10**6, streamed=True, in_memory=False, order=2.0), "nystrom"),
    (dict(n=10**6, streamed=True, in_memory=False, order=2.0, method="frobenius"), "frobenius"),
    (dict(n=10**6, streamed=True, in_memory=True, order=2.0), "frobenius"),
    (dict(landmarks=True), "nystrom"),
    (dict(rff_features=100), "rff"),
    (dict(rff_features=100, mesh=True), "rff"),
    (dict(landmarks=True, mesh=True), "nystrom"),
    (dict(kernel="cosine"), "dual"),
    (dict(kernel="cosine", n=2000), "tensor"),
    (dict(kernel="cosine", mesh=True), "tensor"),
    (dict(kernel="cosine", method="primal"), "tensor"),
    (dict(kernel="cosine", n=5000, d=512), "dual"),
    (dict(kernel="cosine", n=BIG, d=512), "product-features"),
    (dict(kernel="cosine", n=BIG, d=512, order=2.0), "frobenius"),
    (dict(kernel="cosine", n=10**6, d=512, streamed=True, in_memory=False, order=2.0), "product-features"),
    (dict(kernel="cosine", n=10**6, d=512, streamed=True, in_memory=False), "product-features"),
    (dict(kernel="cosine", d=512, rff_features=100), "product-features"),
    (dict(kernel="cosine", d=512, mesh=True), "product-features"),
    (dict(kernel="cosine", order=2.0, method="frobenius"), "frobenius"),
])
def test_plan_table(kw, path):
    p = plan(**kw)
    assert p.path == path
    if path == "nystrom" and not kw.get("landmarks"):
        assert p.landmarks == DEFAULT_LANDMARKS
    assert p.marginal.sharded == bool(kw.get("mesh"))


@pytest.mark.parametrize("kw,match", [
    (dict(method="frobenius"), "method: 'frobenius'"),
    (dict(method="frobenius", order=2.0, top_k=5), "top_k: the Frobenius path"),
    (dict(mesh=True), "mesh: the exact Gaussian kernel has no sharded"),
    (dict(method="primal"), "method: the exact Gaussian kernel has no finite primal"),
    (dict(landmarks=True, rff_features=10), "landmarks: choose Nyström"),
    (dict(landmarks=True, method="dual"), "method: Nyström is a primal"),
    (dict(streamed=True, in_memory=False, method="dual", n=10**6), "method: the exact Gaussian kernel"),
    (dict(kernel="cosine", landmarks=True), "landmarks: Nyström features are for kernel='gaussian'"),
    (dict(kernel="cosine", method="frobenius"), "method: 'frobenius' is the exact order-2"),
    (dict(kernel="cosine", d=512, mesh=True, method="dual"), "mesh: sharded scores take the primal"),
])
def test_plan_refusals_name_the_option(kw, match):
    with pytest.raises(ValueError, match=match):
        plan(**kw)


def test_sigma_pair():
    assert CR.check_sigma_pair(None) == (None, None)
    assert CR.check_sigma_pair(2) == (2.0, 2.0)
    assert CR.check_sigma_pair(np.float32(0.5)) == (0.5, 0.5)  # a NumPy scalar is honoured
    assert CR.check_sigma_pair((0.7, None)) == (0.7, None)
    assert CR.check_sigma_pair(np.array([0.7, 0.5])) == (0.7, 0.5)
    for bad, match in (((1, 2, 3), "a pair"), (0.0, "finite positive"), ((1.0, -2.0), "finite positive"),
                       ("wide", "positive number"), ((np.nan, 1.0), "finite positive")):
        with pytest.raises(ValueError, match="sigma: .*" + match):
            CR.check_sigma_pair(bad)


def test_sigmas_are_the_median_heuristic_of_each_modality(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(3000, 5)), 3.0 * rng.normal(size=(3000, 4))
    inputs = paired_inputs(x, t, nonzero=False, same_dim=False)
    sx, st = CR.resolve_sigmas("gaussian", (None, None), inputs)
    assert (sx, st) == (median_sigma(x), median_sigma(t)) and st > 2 * sx
    assert CR.resolve_sigmas("gaussian", (None, 1.5), inputs) == (sx, 1.5)
    # repeated prompts (k images per prompt): the median of the distinct prompts' distances
    reps = np.repeat(t[:3], [2800, 100, 100], axis=0)  # one prompt dominates: most pairs are a prompt with itself
    with pytest.raises(ValueError, match="median pairwise distance is 0"):
        median_sigma(reps)
    rep_inputs = paired_inputs(x, reps, nonzero=False, same_dim=False)
    assert CR.resolve_sigmas("gaussian", (None, None), rep_inputs)[1] == pytest.approx(median_sigma(t[:3]), rel=1e-12)
    with pytest.raises(ValueError, match="sigma: the texts hold one distinct prompt"):
        CR.resolve_sigmas("gaussian", (None, None), paired_inputs(x, np.repeat(t[:1], 3000, 0), nonzero=False,
                                                                  same_dim=False))
    assert CR.resolve_sigmas("cosine", (None, None), inputs) == (None, None)
    with pytest.raises(ValueError, match="sigma: only used by kernel='gaussian'"):
        CR.resolve_sigmas("cosine", (1.0, 1.0), inputs)
    # streamed files: the same rows as median_sigma's own sample
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    monkeypatch.setattr("clipcore._pipeline.inputs.IN_MEMORY_ROWS", 100)
    files = paired_inputs(str(tmp_path / "x.npy"), str(tmp_path / "t.npy"), nonzero=False, same_dim=False)
    assert files.streamed
    assert CR.resolve_sigmas("gaussian", (None, None), files) == pytest.approx((sx, st), rel=1e-12)


def test_mapped_source_walks_a_row_map(tmp_path):
    rng = np.random.default_rng(1)
    x, t = rng.normal(size=(1000, 4)), rng.normal(size=(1000, 3))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    base = paired_source(str(tmp_path / "x.npy"), str(tmp_path / "t.npy"))
    fn = lambda a, b: scaled_concat(a, b, 2.0, 0.5)  # noqa: E731
    src = MappedSource(base, fn, 7, name="joint", nonzero=False)
    assert (src.n, src.d_images, src.texts, src.iterator, src.in_memory) == (1000, 7, None, None, False)
    got = np.concatenate([b.images for b in src.blocks(300, nonzero=False)])
    np.testing.assert_array_equal(got, fn(x, t))
    np.testing.assert_array_equal(src.images.read(10, 20), fn(x[10:20], t[10:20]))
    np.testing.assert_array_equal(src.images.take(np.array([5, 2])), fn(x[[5, 2]], t[[5, 2]]))
    u = MappedSource(base, tensor_features, 12, name="joint", nonzero=True)
    np.testing.assert_allclose(next(iter(u.blocks(50, nonzero=True))).images, tensor_features(x[:50], t[:50]))


def test_mapped_source_names_the_bad_row_of_the_raw_column(tmp_path):
    rng = np.random.default_rng(2)
    x, t = rng.normal(size=(500, 4)), rng.normal(size=(500, 3))
    t[321, 1] = np.nan
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    src = MappedSource(paired_source(str(tmp_path / "x.npy"), str(tmp_path / "t.npy")), lambda a, b: a, 4,
                       name="images", nonzero=False)
    with pytest.raises(ValueError, match="texts.*row 321"):
        list(src.blocks(100, nonzero=False))
    with pytest.raises(ValueError, match="texts.*row 321"):
        src.images.read(300, 400)


def test_iterators_are_spooled_and_read_again(tmp_path):
    rng = np.random.default_rng(3)
    x, t = rng.normal(size=(700, 4)).astype(np.float32), rng.normal(size=(700, 3)).astype(np.float32)
    it = paired_source(((x[i:i + 150], t[i:i + 150]) for i in range(0, 700, 150)))
    with pytest.raises(ValueError, match="spool it first"):
        MappedSource(it, lambda a, b: a, 4, name="images", nonzero=False)
    src = spool(it, str(tmp_path), nonzero=False, progress=False, desc="test")
    assert src.n == 700 and src.images.dtype == np.float32
    for _ in range(2):
        blocks = list(src.blocks(256, nonzero=False))
        np.testing.assert_array_equal(np.concatenate([b.images for b in blocks]), x)
        np.testing.assert_array_equal(np.concatenate([b.texts for b in blocks]), t)
