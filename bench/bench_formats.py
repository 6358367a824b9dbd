"""Read rate of each embedding-set layout beside plain .npy reading of the same bytes, in one run.

For each stored dtype (float16, as CLIP embeddings are usually saved, and float32) the same n × d rows are
written as: one plain ``.npy`` file; clip-retrieval / LAION-400M folders (``img_emb/img_emb_{N}.npy``,
``text_emb``, ``metadata``); LAION-5B (``laion2B-en/`` beside ``laion2B-en-metadata/``); DataComp
(``{shard}.npz`` of five arrays, ``np.savez``); Parquet (a fixed-size-list column and a ``list<float>`` column,
pyarrow's default snappy compression, and uncompressed).  Each is read the way a score reads it: the images
column of :func:`clipcore.sources.paired_source` (layout recognised from the folder, shards paired by number,
metadata opened), ``RowSource.read`` block by block (``--block`` rows), widened to float32; the page cache is
warm (best of ``--repeat``).  Baselines: clipcore's reader on the one ``.npy`` file, and NumPy's ``np.load``
of it.  Goals (issue 20): the ``.npy``-based layouts within 10 % of the ``.npy`` file, Parquet list columns
within 2×.  The floor of Parquet reading is pyarrow's own decode (``pq.read_table`` of the column
to NumPy), shown as a row of its own.

Usage: python bench/bench_formats.py [--n 200000] [--d 768] [--shards 8] [--dir /tmp/cc_formats]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time

import numpy as np


def _write_layouts(root: str, x: np.ndarray, t: np.ndarray, shards: int) -> dict[str, tuple]:
    """Every layout of the rows; ``{label: (path, paired_source keywords)}``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import clipcore

    n, d = x.shape
    cut = np.linspace(0, n, shards + 1).astype(int)
    out = {}
    np.save(os.path.join(root, "plain.npy"), x)
    out[".npy file (clipcore)"] = (os.path.join(root, "plain.npy"), {})
    cr = os.path.join(root, "clip_retrieval")
    clipcore.write_shards(cr, x, t, shard_rows=-(-n // shards), dtype=x.dtype, layout="clip-retrieval",
                          metadata={"caption": [f"c{i % 1000}" for i in range(n)],
                                    "image_path": [f"{i}.jpg" for i in range(n)]})
    os.remove(os.path.join(cr, "manifest.json"))  # read by its names, as clip-retrieval's own output
    out["clip-retrieval"] = (cr, {})
    l5 = os.path.join(root, "laion5b", "laion2B-en")
    shutil.copytree(os.path.join(cr, "img_emb"), os.path.join(l5, "img_emb"))
    shutil.copytree(os.path.join(cr, "text_emb"), os.path.join(l5, "text_emb"))
    shutil.copytree(os.path.join(cr, "metadata"), l5 + "-metadata")
    out["laion-5b"] = (os.path.dirname(l5), {})
    dc = os.path.join(root, "datacomp")
    os.makedirs(dc)
    for k in range(shards):
        a, b = cut[k], cut[k + 1]
        np.savez(os.path.join(dc, f"{k:08d}.npz"), b32_img=t[a:b, :64], b32_txt=t[a:b, :64], l14_img=x[a:b],
                 l14_txt=t[a:b], dedup=np.zeros((b - a, 4), np.uint8))
        pq.write_table(pa.table({"uid": [str(i) for i in range(a, b)]}), os.path.join(dc, f"{k:08d}.parquet"))
    out["datacomp (.npz)"] = (dc, {"images_key": "l14_img"})
    for label, fixed, comp in (("parquet fixed-size list", True, "snappy"), ("parquet list<float>", False, "snappy"),
                               ("parquet fixed-size list, uncompressed", True, "none")):
        folder = os.path.join(root, label.replace(" ", "_").replace(",", "").replace("<", "").replace(">", ""))
        os.makedirs(os.path.join(folder, "data"))
        for k in range(shards):
            a, b = cut[k], cut[k + 1]
            cols = {}
            for name, arr in (("image_embedding", x[a:b]), ("text_embedding", t[a:b])):
                values = pa.array(arr.reshape(-1))
                cols[name] = (pa.FixedSizeListArray.from_arrays(values, d) if fixed else
                              pa.ListArray.from_arrays(pa.array(np.arange(0, values.__len__() + 1, d, dtype=np.int32)),
                                                       values))
            pq.write_table(pa.table(cols), os.path.join(folder, "data", f"train-{k:05d}-of-{shards:05d}.parquet"),
                           compression=comp)
        out[label] = (folder, {})
    return out


def _pyarrow_floor(folder: str) -> None:
    """pyarrow's own decode of the image column, file by file, to NumPy: the floor of any Parquet reader."""
    import glob

    import pyarrow.parquet as pq

    for f in sorted(glob.glob(os.path.join(folder, "data", "*.parquet"))):
        col = pq.read_table(f, columns=["image_embedding"]).column(0).combine_chunks()
        col.flatten().to_numpy(zero_copy_only=False)


def _read_all(src, block: int) -> int:
    for a in range(0, src.n, block):
        src.read(a, min(src.n, a + block))
    return src.n


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_dtype(root: str, n: int, d: int, dtype, shards: int, block: int, repeat: int) -> list[tuple]:
    from clipcore.sources import paired_source

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d)).astype(dtype)
    t = rng.normal(size=(n, d)).astype(dtype)
    layouts = _write_layouts(root, x, t, shards)
    stored = x.nbytes
    rows = [("np.load (NumPy, whole .npy)", _best(lambda: np.load(layouts[".npy file (clipcore)"][0]), repeat))]
    for label, (path, kw) in layouts.items():
        def run(path=path, kw=kw):
            src = paired_source(path, single=True, name="x", **kw)
            assert src.n == n and src.d_images == d
            _read_all(src.images, block)
        rows.append((label, _best(run, repeat)))
    rows.append(("pyarrow read_table (floor, fixed-size list)", _best(lambda: _pyarrow_floor(
        layouts["parquet fixed-size list"][0]), repeat)))
    base = dict(rows)[".npy file (clipcore)"]
    return [(label, np.dtype(dtype).name, s, n / s, stored / s / 1e9, s / base) for label, s in rows]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--d", type=int, default=768)
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--block", type=int, default=1 << 16)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dir", default="/tmp/cc_formats")
    args = p.parse_args()
    print(f"# bench_formats: n = {args.n}, d = {args.d}, {args.shards} shards, blocks of {args.block} rows, "
          f"best of {args.repeat} (warm page cache); {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}")
    print(f"{'layout':42s} {'dtype':8s} {'s':>7s} {'rows/s':>11s} {'GB/s':>6s} {'x .npy':>7s}")
    for dtype in (np.float16, np.float32):
        root = os.path.join(args.dir, np.dtype(dtype).name)
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        for label, name, s, rps, gbs, ratio in bench_dtype(root, args.n, args.d, dtype, args.shards, args.block,
                                                           args.repeat):
            print(f"{label:42s} {name:8s} {s:7.3f} {rps:11,.0f} {gbs:6.2f} {ratio:7.2f}")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
