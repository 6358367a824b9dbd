"""The file-taking entries besides the scores — clip_score, retrieval, similarity_table, modes, compare — read
folders through the same lister and pairing as sce: ``.npz`` shards holding several arrays through
``images_key`` / ``texts_key`` give exactly the in-memory result of the same rows, a wrong key is one error
naming it and the arrays there are, and ``skip_incomplete`` scores the complete shard pairs and reports the
rest in ``result.pairing``."""

import os

import numpy as np
import pytest

import clipcore
from clipcore.modes import modes
from clipcore.retrieval import retrieval
from clipcore.tables import clip_score, similarity_table

from . import folders


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(260, 8))
    t = x + 0.7 * rng.normal(size=(260, 8))
    return x, t


def _npz_folder(root, arrays, sizes):
    """``emb_{k}.npz`` shards (no known layout) each holding every array of ``arrays``; the row order."""
    os.makedirs(root, exist_ok=True)
    parts = folders.deal(len(next(iter(arrays.values()))), sizes, seed=4)
    for k, idx in enumerate(parts):
        np.savez(os.path.join(root, f"emb_{k}.npz"), **{a: v[idx] for a, v in arrays.items()})
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def npz_dir(tmp_path_factory, rows):
    x, t = rows
    root = tmp_path_factory.mktemp("npz")
    order = _npz_folder(root, {"img": x, "txt": t, "other": x[:, :3].copy()}, [90, 40, 130])
    return str(root), x[order], t[order]


@pytest.fixture(scope="module")
def datacomp_dir(tmp_path_factory, rows):
    x, t = rows
    root = tmp_path_factory.mktemp("datacomp")
    arrays = {"b32_img": x[:, :4].copy(), "b32_txt": t[:, :4].copy(), "l14_img": x, "l14_txt": t,
              "dedup": np.zeros(len(x), bool)}
    order = folders.datacomp(root, arrays, [100, 160], dtype=np.float32)
    return str(root), x[order].astype(np.float32), t[order].astype(np.float32)


def _hessel(x, t):
    cos = np.sum(x * t, axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(t, axis=1))
    return 2.5 * np.maximum(cos, 0).mean()


def test_clip_score_through_keys(npz_dir, datacomp_dir):
    root, x, t = npz_dir
    r = clip_score(root, images_key="img", texts_key="txt")
    assert r.score == pytest.approx(_hessel(x, t), rel=1e-12)
    np.testing.assert_array_equal(r.per_sample, clip_score(x, t).per_sample)
    assert r.pairing["images_key"] == "img" and r.pairing["texts_key"] == "txt" and r.pairing["rows"] == 260
    assert clip_score(x, t).pairing is None
    root, x, t = datacomp_dir  # DataComp: texts_key follows images_key (l14_img -> l14_txt)
    r = clip_score(root, images_key="l14_img", variant="torchmetrics")
    np.testing.assert_array_equal(r.per_sample, clip_score(x, t, variant="torchmetrics").per_sample)
    assert r.pairing["layout"] == "datacomp" and r.pairing["texts_key"] == "l14_txt"


def test_retrieval_through_keys(npz_dir):
    root, x, t = npz_dir
    r = retrieval(root, images_key="img", texts_key="txt", k=(1, 5))
    ref = retrieval(x, t, (1, 5))
    np.testing.assert_array_equal(r.image_to_text_rank, ref.image_to_text_rank)
    np.testing.assert_array_equal(r.text_to_image_rank, ref.text_to_image_rank)
    # NumPy: rank of each image's own caption among all captions
    xn, tn = x / np.linalg.norm(x, axis=1, keepdims=True), t / np.linalg.norm(t, axis=1, keepdims=True)
    s = xn @ tn.T
    ranks = (s > np.diag(s)[:, None]).sum(axis=1)
    np.testing.assert_array_equal(r.image_to_text_rank, ranks)
    assert r.summary()["pairing"]["shards"] == 3 and "pairing" not in ref.summary()


def test_similarity_table_through_keys(npz_dir, datacomp_dir):
    root, x, t = npz_dir
    tab = similarity_table(root, root, images_key="img", texts_key="txt")  # one folder: both columns, paired
    ref = (t / np.linalg.norm(t, axis=1, keepdims=True)) @ (x / np.linalg.norm(x, axis=1, keepdims=True)).T
    np.testing.assert_allclose(tab.values, ref, rtol=0, atol=1e-12)
    assert tab.pairing["shards"] == 3
    root_dc, xd, td = datacomp_dir  # separate sides: each read alone with its own key
    tab = similarity_table(os.path.join(root_dc, "00000001.npz"), root_dc, images_key="l14_img", texts_key="l14_txt")
    t1 = td[100:]  # the second shard's texts
    ref = (t1 / np.linalg.norm(t1, axis=1, keepdims=True)) @ (xd / np.linalg.norm(xd, axis=1, keepdims=True)).T
    np.testing.assert_allclose(tab.values, ref, rtol=0, atol=1e-6)
    assert tab.values.shape == (160, 260) and tab.pairing is None
    with pytest.raises(ValueError, match="dimension 8 differs"):
        similarity_table(root_dc, root_dc, images_key="l14_img", texts_key="b32_txt")


def test_modes_through_keys(npz_dir):
    root, x, t = npz_dir
    r = modes(root, images_key="img", texts_key="txt", k=3, per_mode=5, progress=False)
    ref = modes(x, t, k=3, per_mode=5, progress=False)
    np.testing.assert_allclose(r.eigenvalues, ref.eigenvalues, rtol=1e-12)
    np.testing.assert_array_equal(r.indices, ref.indices)
    assert r.pairing["rows"] == 260 and ref.pairing is None
    assert r.summary()["pairing"]["images_key"] == "img"


def test_compare_through_keys(npz_dir, datacomp_dir):
    root, x, t = npz_dir
    root_dc, xd, td = datacomp_dir
    sets = {"a": root, "b": {"images": os.path.join(root, "emb_*.npz"), "texts": os.path.join(root, "emb_*.npz")}}
    r = clipcore.compare(sets, kernel="cosine", bootstrap=0, images_key="img", texts_key="txt", progress=False)
    ref = clipcore.compare({"a": (x, t), "b": (x, t)}, kernel="cosine", bootstrap=0, progress=False)
    for name in ("a", "b"):
        assert r[name].sce == pytest.approx(ref[name].sce, rel=1e-12)
        assert r[name].clip_score == pytest.approx(_hessel(x, t), rel=1e-12)
    assert r["a"].pairing["shards"] == 3 and ref["a"].pairing is None
    assert r.summary()["models"]["a"]["pairing"]["images_key"] == "img"


@pytest.mark.parametrize("entry", ["clip_score", "retrieval", "similarity_table", "modes", "compare"])
def test_wrong_key_is_one_clear_error(datacomp_dir, entry):
    root, x, t = datacomp_dir
    call = {
        "clip_score": lambda: clip_score(root, images_key="l15_img"),
        "retrieval": lambda: retrieval(root, images_key="l15_img"),
        "similarity_table": lambda: similarity_table(root, root, images_key="l15_img"),
        "modes": lambda: modes(root, images_key="l15_img", progress=False),
        "compare": lambda: clipcore.compare({"a": root, "b": (x, t)}, images_key="l15_img", bootstrap=0),
    }[entry]
    with pytest.raises(ValueError) as exc:
        call()
    msg = str(exc.value)
    assert "'l15_img'" in msg and "00000000.npz" in msg
    for name in ("b32_img", "b32_txt", "l14_img", "l14_txt", "dedup"):
        assert name in msg


def test_no_key_on_several_arrays_and_keys_on_arrays(datacomp_dir):
    root, x, t = datacomp_dir
    with pytest.raises(ValueError, match="holds 5 arrays"):
        clip_score(root)
    for call in (lambda: clip_score(x, t, images_key="l14_img"), lambda: retrieval(x, t, texts_key="l14_txt"),
                 lambda: modes(x, t, images_key="l14_img"),
                 lambda: similarity_table(t, x, images_key="l14_img")):
        with pytest.raises(ValueError, match="_key: names an array inside .npz shards"):
            call()


def test_skip_incomplete_keeps_the_complete_pairs(tmp_path, rows):
    x, t = rows
    order = folders.clip_retrieval(tmp_path, x, t, [70, 50, 80, 60], dtype=np.float32)
    os.remove(tmp_path / "text_emb" / "text_emb_2.npy")
    kept = np.r_[order[:120], order[200:]]
    xk, tk = x[kept].astype(np.float32), t[kept].astype(np.float32)
    for call in (lambda **kw: clip_score(str(tmp_path), **kw), lambda **kw: retrieval(str(tmp_path), **kw),
                 lambda **kw: modes(str(tmp_path), progress=False, **kw)):
        with pytest.raises(ValueError, match="text_emb_2.npy missing"):
            call()
    r = clip_score(str(tmp_path), skip_incomplete=True)
    np.testing.assert_array_equal(r.per_sample, clip_score(xk, tk).per_sample)
    assert r.pairing["skipped"] == [2] and r.pairing["skipped_rows"] == 80 and not r.pairing["complete"]
    assert r.pairing["missing"] == ["text_emb_2.npy missing"]
    rr = retrieval(str(tmp_path), skip_incomplete=True)
    np.testing.assert_array_equal(rr.image_to_text_rank, retrieval(xk, tk).image_to_text_rank)
    m = modes(str(tmp_path), skip_incomplete=True, k=2, per_mode=4, progress=False)
    np.testing.assert_allclose(m.eigenvalues, modes(xk, tk, k=2, per_mode=4, progress=False).eigenvalues, rtol=1e-12)
    assert m.pairing["skipped"] == [2]
    tab = similarity_table(str(tmp_path), str(tmp_path), skip_incomplete=True)
    assert tab.values.shape == (180, 180) and tab.pairing["skipped"] == [2]
    c = clipcore.compare({"a": str(tmp_path), "b": (xk, tk)}, kernel="cosine", bootstrap=0, skip_incomplete=True,
                         progress=False)
    assert c["a"].sce == pytest.approx(c["b"].sce, rel=1e-12) and c["a"].pairing["skipped"] == [2]


def test_conditional_vendi_through_keys_and_skip(npz_dir, tmp_path, rows):
    root, x, t = npz_dir
    r = clipcore.conditional_vendi(root, images_key="img", texts_key="txt", kernel="cosine", dtype="float64")
    ref = clipcore.conditional_vendi(x, t, kernel="cosine", dtype="float64")
    assert r.conditional_vendi == pytest.approx(ref.conditional_vendi, rel=1e-12)
    assert r.information_vendi == pytest.approx(ref.information_vendi, rel=1e-12)
    assert r.pairing["images_key"] == "img" and ref.pairing is None and r.summary()["pairing"]["shards"] == 3
    with pytest.raises(ValueError, match="'imgs'.*'img', 'txt', 'other'"):
        clipcore.conditional_vendi(root, images_key="imgs", texts_key="txt")
    xs, ts = rows
    order = folders.clip_retrieval(tmp_path, xs, ts, [70, 50, 80, 60], dtype=np.float32)
    os.remove(tmp_path / "img_emb" / "img_emb_3.npy")
    with pytest.raises(ValueError, match="img_emb_3.npy missing"):
        clipcore.conditional_vendi(str(tmp_path))
    r = clipcore.conditional_vendi(str(tmp_path), skip_incomplete=True, kernel="cosine", dtype="float64")
    kept = order[:200]
    ref = clipcore.conditional_vendi(xs[kept].astype(np.float32), ts[kept].astype(np.float32), kernel="cosine",
                                     dtype="float64")
    assert r.conditional_vendi == pytest.approx(ref.conditional_vendi, rel=1e-12) and r.pairing["skipped"] == [3]


def test_prompt_ids_are_the_captions_of_the_rows_scored(tmp_path, rows):
    x, t = rows
    captions = [f"prompt {i % 9}" for i in range(len(x))]
    order = folders.clip_retrieval(tmp_path, x, t, [70, 50, 80, 60], dtype=np.float32, captions=captions)
    os.remove(tmp_path / "text_emb" / "text_emb_1.npy")
    kept = np.r_[order[:70], order[120:]]
    ids = clipcore.sources.prompt_ids(str(tmp_path), skip_incomplete=True)
    first: dict = {}  # reference: ids by first appearance of each caption, over the rows scored
    want = np.array([first.setdefault(captions[i], len(first)) for i in kept])
    np.testing.assert_array_equal(ids, want)
    assert ids.dtype == np.int64 and ids.shape == (210,)
    with pytest.raises(ValueError, match="text_emb_1.npy missing"):
        clipcore.sources.prompt_ids(str(tmp_path))
    assert clipcore.sources.prompt_ids(str(tmp_path), single=True).shape == (260,)  # images only: every shard
    r = clipcore.conditional_vendi(str(tmp_path), skip_incomplete=True, kernel="cosine", groups=ids)
    assert r.groups.sizes.sum() == 210 and len(r.groups.ids) == 9
    src = clipcore.sources.paired_source(str(tmp_path), skip_incomplete=True)
    assert [src.prompts()[g] for g in ids[:5]] == [captions[i] for i in kept[:5]]
    np.testing.assert_array_equal(src.metadata("image_path", [0, 69, 70, 209]),
                                  [f"images/{kept[i]:06d}.jpg" for i in (0, 69, 70, 209)])
    with pytest.raises(ValueError, match="per-row metadata"):
        clipcore.sources.prompt_ids(x)
