"""The file options of the commands that read embeddings (``--images-key``, ``--texts-key``,
``--skip-incomplete``): score, edit, clipscore, compare, table and modes read folders of the layouts other
tools write through the entry points, give the numbers of the same rows in memory, and report the pairing
(printed and in the JSON) when shards are left out; modes draws image grids from the metadata's
``image_path``."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import clipcore
from clipcore.cli import main
from clipcore.tables import clip_score
from sources import folders  # tests/sources/folders.py: folders in the layouts other tools write


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(21)
    t = rng.normal(size=(7, 8))[np.arange(150) % 7]  # 7 prompts, repeated
    x = t + 0.8 * rng.normal(size=(150, 8))
    return x, t


@pytest.fixture
def datacomp(tmp_path, rows):
    x, t = rows
    arrays = {"b32_img": x[:, :4].copy(), "b32_txt": t[:, :4].copy(), "l14_img": x, "l14_txt": t,
              "dedup": np.zeros(len(x), bool)}
    order = folders.datacomp(tmp_path / "dc", arrays, [60, 90], dtype=np.float32)
    return str(tmp_path / "dc"), x[order].astype(np.float32), t[order].astype(np.float32)


@pytest.fixture
def gappy(tmp_path, rows):
    """A clip-retrieval folder whose text shard 1 is missing: (root, kept images, kept texts, kept order)."""
    x, t = rows
    order = folders.clip_retrieval(tmp_path / "cr", x, t, [50, 40, 60], dtype=np.float32)
    os.remove(tmp_path / "cr" / "text_emb" / "text_emb_1.npy")
    kept = np.r_[order[:50], order[90:]]
    return str(tmp_path / "cr"), x[kept].astype(np.float32), t[kept].astype(np.float32), kept


def _payload(path):
    with open(path) as f:
        return json.load(f)


def test_score_reads_datacomp_through_the_key(datacomp, tmp_path):
    root, x, t = datacomp
    out = tmp_path / "s.json"
    assert main(["score", "--images", root, "--images-key", "l14_img", "--json", str(out), "--quiet"]) == 0
    p = _payload(out)
    ref = clipcore.sce(x, t)
    assert p["scores"]["sce"] == pytest.approx(ref.sce, rel=1e-12)
    assert p["scores"]["text_score"] == pytest.approx(ref.text_score, rel=1e-12)
    assert p["pairing"]["layout"] == "datacomp" and p["pairing"]["texts_key"] == "l14_txt"
    assert p["inputs"]["images"]["rows"] == 150


def test_score_wrong_key_is_one_error(datacomp, capsys):
    root, _, _ = datacomp
    assert main(["score", "--images", root, "--images-key", "l15_img", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'l15_img'" in err and "l14_img" in err and "dedup" in err


def test_score_skip_incomplete(gappy, tmp_path, capsys):
    root, x, t, _ = gappy
    assert main(["score", "--images", root, "--quiet"]) == 2
    assert "text_emb_1.npy missing" in capsys.readouterr().err
    out = tmp_path / "s.json"
    assert main(["score", "--images", root, "--skip-incomplete", "--json", str(out), "--vendi-orders", "2",
                 "--dtype", "float64"]) == 0
    printed = capsys.readouterr().out
    assert "1 shard(s) with 40 image rows left out" in printed and "text_emb_1.npy missing" in printed
    p = _payload(out)
    ref = clipcore.sce(x, t, dtype="float64")
    assert p["scores"]["sce"] == pytest.approx(ref.sce, rel=1e-12)
    assert p["scores"]["vendi"]["2.0"] == pytest.approx(clipcore.vendi(x, order=2, dtype="float64").score, rel=1e-9)
    assert p["pairing"]["skipped"] == [1] and p["pairing"]["skipped_rows"] == 40 and p["result"]["n"] == 110


def test_score_vendi_on_the_kept_rows_through_nystrom(gappy, tmp_path):
    """The separate Vendi calls (Nyström) read the same complete pairs' images as SCE."""
    root, x, t, _ = gappy
    out = tmp_path / "s.json"
    assert main(["score", "--images", root, "--skip-incomplete", "--kernel", "gaussian", "--sigma", "3",
                 "--landmarks", "40", "--seed", "1", "--vendi-orders", "2", "--json", str(out), "--quiet"]) == 0
    p = _payload(out)
    ref = clipcore.vendi(x, kernel="gaussian", sigma=3.0, landmarks=40, key=1, order=2)
    assert p["scores"]["vendi"]["2.0"] == pytest.approx(ref.score, rel=1e-9)


def test_edit_reads_keys(datacomp, tmp_path):
    root, x, t = datacomp
    out = tmp_path / "e.npy"
    assert main(["edit", "--images", root, "--images-key", "l14_img", "--out", str(out), "--quiet",
                 "--json", str(tmp_path / "e.json")]) == 0
    editor = clipcore.fit_editor(x, t)
    np.testing.assert_allclose(np.load(out), np.asarray(editor.nullify(x, t, 1.0)), rtol=0, atol=1e-10)
    assert _payload(tmp_path / "e.json")["pairing"]["images_key"] == "l14_img"


def test_clipscore_skip_incomplete(gappy, tmp_path, capsys):
    root, x, t, _ = gappy
    out = tmp_path / "c.json"
    assert main(["clipscore", "--images", root, "--skip-incomplete", "--variant", "hessel", "--json", str(out)]) == 0
    assert "left out" in capsys.readouterr().out
    p = _payload(out)
    assert p["scores"]["hessel"]["score"] == pytest.approx(clip_score(x, t).score, rel=1e-12)
    assert p["n"] == 110 and p["pairing"]["missing"] == ["text_emb_1.npy missing"]


def test_compare_sets_through_keys(datacomp, gappy, tmp_path):
    root, x, t = datacomp
    out = tmp_path / "c.json"
    assert main(["compare", "--set", f"a={root}", "--set", f"b={root}", "--images-key", "l14_img",
                 "--kernel", "cosine", "--bootstrap", "0", "--json", str(out), "--quiet"]) == 0
    p = _payload(out)
    ref = clipcore.sce(x.astype(np.float64), t.astype(np.float64))  # compare holds the sets in float64
    assert p["models"]["a"]["sce"] == pytest.approx(ref.sce, rel=1e-12)
    assert p["models"]["b"]["pairing"]["images_key"] == "l14_img"
    groot, gx, gt, _ = gappy
    assert main(["compare", "--set", f"a={groot}", "--set", f"b={groot}", "--skip-incomplete", "--kernel", "cosine",
                 "--bootstrap", "0", "--json", str(out), "--quiet"]) == 0
    p = _payload(out)
    assert p["models"]["a"]["n"] == 110 and p["models"]["a"]["pairing"]["skipped"] == [1]


def test_table_of_one_folder(gappy, tmp_path):
    root, x, t, _ = gappy
    out = tmp_path / "t.json"
    assert main(["table", "--embeddings", root, "--skip-incomplete", "--csv", str(tmp_path / "t.csv"),
                 "--png", str(tmp_path / "t.png"), "--json", str(out), "--quiet"]) == 0
    p = _payload(out)
    tn, xn = t / np.linalg.norm(t, axis=1, keepdims=True), x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(np.array(p["values"]), tn.astype(np.float64) @ xn.T.astype(np.float64),
                               rtol=0, atol=1e-6)
    assert p["pairing"]["skipped"] == [1]


def test_table_separate_sides_with_keys(datacomp, tmp_path):
    root, x, t = datacomp
    out = tmp_path / "t.json"
    assert main(["table", "--texts", os.path.join(root, "00000000.npz"), "--images", root,
                 "--texts-key", "l14_txt", "--images-key", "l14_img", "--csv", str(tmp_path / "t.csv"),
                 "--png", str(tmp_path / "t.png"), "--json", str(out), "--quiet"]) == 0
    p = _payload(out)
    t0 = t[:60]
    tn, xn = t0 / np.linalg.norm(t0, axis=1, keepdims=True), x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(np.array(p["values"]), tn @ xn.T, rtol=0, atol=1e-6)
    assert "pairing" not in p


def test_modes_grids_from_metadata_image_path(gappy, rows, tmp_path, capsys):
    from PIL import Image

    root, x, t, kept = gappy
    os.makedirs(os.path.join(root, "images"))
    for i in kept[::2]:  # half the rows have a local file (image_path is relative to the folder)
        Image.new("RGB", (8, 8), (int(i) % 255, 0, 0)).save(os.path.join(root, "images", f"{int(i):06d}.jpg"))
    out = tmp_path / "modes"
    assert main(["modes", "--images", root, "--skip-incomplete", "--k", "2", "--per-mode", "6", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 image grid(s)" in printed and "left out" in printed
    p = _payload(out / "modes.json")
    ref = clipcore.modes(x, t, k=2, per_mode=6, progress=False)
    np.testing.assert_array_equal(np.array(p["indices"]), ref.indices)
    have = set(int(i) for i in kept[::2])
    for row, files in zip(ref.indices, p["files"]):
        for r, f in zip(row, files):
            g = int(kept[r])  # the global sample of row r of the kept pairs
            assert f == (os.path.join(root, "images", f"{g:06d}.jpg") if g in have else None)
    captions = folders.captions_of(150)
    assert p["prompts"] == [[captions[int(kept[r])] for r in row] for row in ref.indices]
    assert sorted(os.listdir(out)) == ["mode-1.png", "mode-2.png", "modes.json"]
    assert p["pairing"]["skipped"] == [1]


def test_score_groups_from_captions_and_from_a_file(tmp_path, rows, capsys):
    x, t = rows
    captions = [f"prompt {i % 5}" for i in range(len(x))]  # 5 captions over 7 distinct text rows
    order = folders.clip_retrieval(tmp_path / "cr", x, t, [50, 40, 60], dtype=np.float32, captions=captions)
    os.remove(tmp_path / "cr" / "text_emb" / "text_emb_2.npy")
    kept = order[:90]
    xk, tk = x[kept].astype(np.float32), t[kept].astype(np.float32)
    first: dict = {}
    ids = np.array([first.setdefault(captions[i], len(first)) for i in kept])  # captions of the rows scored
    out = tmp_path / "s.json"
    assert main(["score", "--images", str(tmp_path / "cr"), "--skip-incomplete", "--groups", "captions",
                 "--dtype", "float64", "--json", str(out)]) == 0
    assert "per prompt (5 groups from captions)" in capsys.readouterr().out
    g = _payload(out)["groups"]
    v = clipcore.vendi(xk, groups=ids, dtype="float64").groups
    c = clipcore.conditional_vendi(xk, tk, groups=ids, kernel="cosine", dtype="float64").groups
    assert g["count"] == 5 and g["source"] == "captions" and g["vendi"]["sizes"] == v.sizes.tolist()
    np.testing.assert_allclose(g["vendi"]["scores"], v.scores, rtol=1e-10)
    np.testing.assert_allclose(g["conditional"]["conditional_vendi"], c.conditional_vendi, rtol=1e-10)
    assert g["conditional"]["mean_information_vendi"] == pytest.approx(c.mean_information_vendi, rel=1e-10)

    np.save(tmp_path / "x.npy", xk)
    np.save(tmp_path / "t.npy", tk)
    np.save(tmp_path / "g.npy", np.arange(90) % 3)
    assert main(["score", "--images", str(tmp_path / "x.npy"), "--texts", str(tmp_path / "t.npy"), "--groups",
                 str(tmp_path / "g.npy"), "--dtype", "float64", "--json", str(out), "--quiet"]) == 0
    g = _payload(out)["groups"]
    v = clipcore.vendi(xk, groups=np.arange(90) % 3, dtype="float64").groups
    assert g["vendi"]["ids"] == [0, 1, 2] and g["vendi"]["mean"] == pytest.approx(v.mean, rel=1e-10)
    assert main(["score", "--images", str(tmp_path / "x.npy"), "--texts", str(tmp_path / "t.npy"), "--groups",
                 "captions", "--quiet"]) == 2
    assert "caption column" in capsys.readouterr().err
    np.save(tmp_path / "g.npy", np.arange(80) % 3)
    assert main(["score", "--images", str(tmp_path / "x.npy"), "--texts", str(tmp_path / "t.npy"), "--groups",
                 str(tmp_path / "g.npy"), "--quiet"]) == 2
    assert "groups: expected one id per row" in capsys.readouterr().err


def test_mds_reads_a_folder_with_keys(datacomp, tmp_path):
    root, x, t = datacomp
    out = tmp_path / "m.json"
    assert main(["mds", "--images", root, "--images-key", "l14_img", "--dims", "4", "--method", "pca",
                 "--json", str(out), "--no-plot", "--quiet"]) == 0
    p = _payload(out)
    assert p["n"] == 150 and p["d"] == 8 and p["pairing"]["texts_key"] == "l14_txt"
    # PCA to 4 dims of the same rows in memory (NumPy): retrieval top-1 of the projection
    z = np.concatenate([x, t]).astype(np.float64)
    mu = z.mean(axis=0)
    w = np.linalg.svd(z - mu, full_matrices=False)[2][:4].T
    px, pt = (x - mu) @ w, (t - mu) @ w
    pxn, ptn = px / np.linalg.norm(px, axis=1, keepdims=True), pt / np.linalg.norm(pt, axis=1, keepdims=True)
    s = pxn @ ptn.T
    top1 = float(np.mean(np.argmax(s, axis=1) == np.arange(len(s))))
    assert p["results"]["pca"]["4"]["top1_image_to_text"] == pytest.approx(top1, abs=1e-12)
