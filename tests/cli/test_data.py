"""`clipcore table`: the data files carry every image column; only the printed table is cut."""

from __future__ import annotations

import json

import numpy as np

from clipcore import tables
from clipcore.cli import main
from reference import clip_numpy as R


def test_table_files_hold_every_image_column(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(16)
    t = rng.standard_normal((10, 12)).astype(np.float32)
    x = rng.standard_normal((60, 12)).astype(np.float32)
    np.save(tmp_path / "t.npy", t)
    np.save(tmp_path / "x.npy", x)
    plotted = []
    real_plot = tables.SimilarityTable.plot

    def spy(self, path, **kw):
        plotted.append(self)
        return real_plot(self, path, **kw)

    monkeypatch.setattr(tables.SimilarityTable, "plot", spy)
    csv_path, png, js = tmp_path / "tab.csv", tmp_path / "tab.png", tmp_path / "tab.json"
    assert main(["table", "--texts", str(tmp_path / "t.npy"), "--images", str(tmp_path / "x.npy"),
                 "--csv", str(csv_path), "--png", str(png), "--json", str(js)]) == 0
    ref = R.cosine_table(t, x)
    # printed: the default 40 columns, saying so
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == [f"i{j}" for j in range(40)]
    assert any("first 40 of 60 images" in line and "CSV, PNG and JSON hold every image" in line for line in printed)
    # CSV: 60 image columns
    lines = csv_path.read_text().splitlines()
    assert lines[0].split(",")[1:] == [f"i{j}" for j in range(60)]
    vals = np.array([r.split(",")[1:] for r in lines[1:]], float)
    assert vals.shape == (10, 60)
    np.testing.assert_allclose(vals, ref, atol=1e-6)
    # JSON: every value and label
    payload = json.load(open(js))
    assert len(payload["image_labels"]) == 60 and len(payload["text_labels"]) == 10
    np.testing.assert_allclose(np.array(payload["values"]), ref, atol=1e-6)
    # PNG: drawn from the whole table
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert len(plotted) == 1 and plotted[0].values.shape == (10, 60)
    np.testing.assert_allclose(plotted[0].values, ref, atol=1e-6)


def test_table_prints_everything_when_it_fits(tmp_path, capsys):
    rng = np.random.default_rng(3)
    np.save(tmp_path / "t.npy", rng.standard_normal((3, 5)))
    np.save(tmp_path / "x.npy", rng.standard_normal((60, 5)))
    assert main(["table", "--texts", str(tmp_path / "t.npy"), "--images", str(tmp_path / "x.npy"),
                 "--max-images", "60", "--csv", str(tmp_path / "a.csv"), "--png", str(tmp_path / "a.png")]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == [f"i{j}" for j in range(60)]
    assert "first" not in printed
