"""CLIPScore (both named variants) and the similarity table against loop-level NumPy references."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import clipcore
from reference import clip_numpy as R


def test_clip_score_hand_computed():
    # cosines 0.6 and -0.8 (unit vectors at known angles, with unequal norms)
    x = np.array([[3.0, 0.0], [0.0, 2.0]])
    t = np.array([[0.6, 0.8], [0.6, -0.8]]) * 5
    h = clipcore.clip_score(x, t)
    assert h.score == pytest.approx(2.5 * 0.6 / 2, abs=1e-12) and h.variant == "hessel" and h.weight == 2.5
    np.testing.assert_allclose(h.cosines, [0.6, -0.8], atol=1e-12)
    tm = clipcore.clip_score(x, t, variant="torchmetrics")
    assert tm.score == 0.0  # 100·mean(cos) = −10 is clamped after the mean
    np.testing.assert_allclose(tm.per_sample, [60.0, -80.0], atol=1e-10)
    tm2 = clipcore.clip_score(x[:1], t[:1], variant="torchmetrics")
    assert tm2.score == pytest.approx(60.0, abs=1e-10)


def test_clip_score_matches_reference_on_clip_like_data():
    d = clipcore.synthetic_pairs(n=300, d=32, gap=0.8, seed=3)
    rng = np.random.default_rng(0)
    t = d.texts.copy()
    t[::4] = -t[::4]  # some negative cosines: the variants differ
    x = d.images * rng.uniform(0.5, 3.0, (300, 1)).astype(np.float32)
    assert float(clipcore.clip_score(x, t)) == pytest.approx(R.clip_score_hessel(x, t), rel=1e-6)
    tm = clipcore.clip_score(x, t, variant="torchmetrics")
    assert tm.score == pytest.approx(R.clip_score_torchmetrics(x, t), rel=1e-6)
    assert clipcore.clip_score(x, t, weight=1.0).score == pytest.approx(R.clip_score_hessel(x, t, 1.0), rel=1e-6)


def test_clip_score_reads_a_shard_directory(tmp_path):
    d = clipcore.synthetic_pairs(n=50, d=8, seed=1)
    clipcore.write_shards(tmp_path, d.images, d.texts, shard_rows=20)
    assert clipcore.clip_score(str(tmp_path)).score == pytest.approx(R.clip_score_hessel(d.images, d.texts), rel=1e-6)


@pytest.mark.parametrize("call, message", [
    (lambda x, t: clipcore.clip_score(x, t, variant="clip"), "variant: expected one of 'hessel', 'torchmetrics'"),
    (lambda x, t: clipcore.clip_score(x, t[:3]), "texts: 3 rows but images has 4"),
    (lambda x, t: clipcore.clip_score(x, t[:, :2]), "texts: dimension 2 differs"),
    (lambda x, t: clipcore.clip_score(np.where(np.eye(4, 3, dtype=bool), np.nan, x), t), "images: contains NaN"),
    (lambda x, t: clipcore.clip_score(x * 0, t), "images: row 0 has zero norm"),
    (lambda x, t: clipcore.clip_score(x[:0], t[:0]), "empty set"),
    (lambda x, t: clipcore.clip_score(x), "texts: missing"),
    (lambda x, t: clipcore.clip_score(x, t, weight=-1), "weight"),
])
def test_clip_score_errors(call, message):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=message):
        call(rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))


def test_similarity_table_values_text_csv_png(tmp_path):
    rng = np.random.default_rng(1)
    t, x = rng.standard_normal((3, 6)), rng.standard_normal((5, 6))
    tab = clipcore.similarity_table(t, x, ["a cat", "a dog", "a very long prompt " * 4], list("abcde"))
    np.testing.assert_allclose(tab.values, R.cosine_table(t, x), atol=1e-12)
    text = tab.format(digits=3)
    lines = text.splitlines()
    assert len(lines) == 4 and lines[1].startswith("a cat") and f"{tab.values[1, 4]:.3f}" in lines[2]
    assert len({len(line) for line in lines}) == 1  # aligned columns
    tab.to_csv(tmp_path / "t.csv")
    rows = list(csv.reader(open(tmp_path / "t.csv")))
    assert rows[0] == ["text \\ image", "a", "b", "c", "d", "e"]
    np.testing.assert_allclose(np.array([r[1:] for r in rows[1:]], float), tab.values, rtol=0, atol=0)
    png = tab.plot(tmp_path / "t.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    default = clipcore.similarity_table(t, x)
    assert default.text_labels == ["t0", "t1", "t2"] and default.image_labels[-1] == "i4"


def test_similarity_table_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="image_embeddings: dimension 4 differs from text_embeddings' 6"):
        clipcore.similarity_table(rng.standard_normal((2, 6)), rng.standard_normal((3, 4)))
    with pytest.raises(ValueError, match="image_labels: 2 labels for 3 embeddings"):
        clipcore.similarity_table(rng.standard_normal((2, 6)), rng.standard_normal((3, 6)), None, ["a", "b"])
    with pytest.raises(ValueError, match="text_embeddings: contains Inf"):
        clipcore.similarity_table(np.array([[np.inf, 1.0]]), np.ones((1, 2)))
