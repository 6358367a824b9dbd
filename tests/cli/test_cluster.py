"""`clipcore cluster` (clipcore.cli.cluster) in-process: k-means, AE + k-means and DEC with metrics and t-SNE plots."""

from __future__ import annotations

import json

import numpy as np

from clipcore.cli import main
from models.helpers import blobs as _blobs


def test_cli_cluster_table_json_and_plots(tmp_path, capsys):
    x, y = _blobs(seed=5)  # the fixture's shapes and options: its compiled loops are reused
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / "c.json"
    rc = main(["cluster", "--embeddings", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--k", "4",
               "--hidden", "32,32,64", "--embed-dim", "4", "--pretrain-steps", "300", "--max-steps", "300",
               "--update-interval", "20", "--n-init", "5", "--tsne-samples", "80",
               "--plot-prefix", str(tmp_path / "p"), "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    for word in ("k-means", "AE + k-means", "DEC", "ACC", "NMI", "FMI"):
        assert word in printed
    payload = json.loads(out.read_text())
    assert set(payload["results"]) == {"k-means", "AE + k-means", "DEC"}
    assert payload["results"]["DEC"]["acc"] >= 0.95
    assert (tmp_path / "p_clusters.png").stat().st_size > 0 and (tmp_path / "p_labels.png").stat().st_size > 0


def test_cli_cluster_errors(tmp_path, capsys):
    x, y = _blobs(n=40, seed=6)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y[:-1])
    bad = x.copy()
    bad[3, 0] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    base = ["cluster", "--quiet", "--tsne-samples", "0"]
    assert main(base + ["--embeddings", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy")]) == 2
    assert "clipcore: error: labels: 39 labels but embeddings has 40 rows" in capsys.readouterr().err
    assert main(base + ["--embeddings", str(tmp_path / "x.npy"), "--k", "41"]) == 2
    assert "clipcore: error: k: 41 clusters but embeddings has only 40 rows" in capsys.readouterr().err
    assert main(base + ["--embeddings", str(tmp_path / "bad.npy")]) == 2
    assert "clipcore: error: embeddings: contains Inf at row 3" in capsys.readouterr().err
    assert main(base + ["--embeddings", str(tmp_path / "missing.npy")]) == 2
    assert "clipcore: error: embeddings: file not found" in capsys.readouterr().err
