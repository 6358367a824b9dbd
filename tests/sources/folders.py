"""Small generated embedding folders in the layouts other tools write (clip-retrieval, LAION-400M, LAION-5B,
DataComp, Parquet / Hugging Face datasets), with rows dealt to uneven partitions in a permuted order.

Each writer returns ``order``: the global row index of every row as the folder holds it (partition by
partition), so ``images[order]`` is the same rows in memory, in the folder's order.
"""

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def deal(n, sizes, seed=0):
    """Row indices of each partition: a permutation of range(n) cut into ``sizes``."""
    assert sum(sizes) == n
    perm = np.random.default_rng(seed).permutation(n)
    return np.split(perm, np.cumsum(sizes)[:-1])


def captions_of(n, prompts=7):
    """Row i's caption: one of ``prompts`` strings (rows share prompts)."""
    return [f"a photo of thing {i % prompts}" for i in range(n)]


def clip_retrieval(root, images, texts, sizes, *, dtype=np.float16, pad=True, metadata_dir=None, seed=0,
                   captions=None):
    """img_emb/img_emb_{N}.npy, text_emb/text_emb_{N}.npy, metadata/metadata_{N}.parquet (image_path, caption)."""
    root = str(root)
    meta = metadata_dir or os.path.join(root, "metadata")
    for sub in (os.path.join(root, "img_emb"), os.path.join(root, "text_emb"), meta):
        os.makedirs(sub, exist_ok=True)
    width = len(str(len(sizes))) if pad else 0
    caps = captions if captions is not None else captions_of(images.shape[0])
    parts = deal(images.shape[0], sizes, seed)
    for k, idx in enumerate(parts):
        num = str(k).zfill(width)
        np.save(os.path.join(root, "img_emb", f"img_emb_{num}.npy"), images[idx].astype(dtype))
        np.save(os.path.join(root, "text_emb", f"text_emb_{num}.npy"), texts[idx].astype(dtype))
        table = pa.table({"image_path": [f"images/{i:06d}.jpg" for i in idx], "caption": [caps[i] for i in idx],
                          "NSFW": ["UNLIKELY"] * len(idx), "similarity": np.ones(len(idx))})
        pq.write_table(table, os.path.join(meta, f"metadata_{num}.parquet"))
    return np.concatenate(parts)


def laion5b(root, images, texts, sizes, *, dtype=np.float16, seed=0):
    """root/laion2B-en/{img_emb,text_emb}/…_{NNNN}.npy and root/laion2B-en-metadata/metadata_{NNNN}.parquet."""
    sub = os.path.join(str(root), "laion2B-en")
    parts = deal(images.shape[0], sizes, seed)
    os.makedirs(os.path.join(sub, "img_emb"))
    os.makedirs(os.path.join(sub, "text_emb"))
    os.makedirs(sub + "-metadata")
    caps = captions_of(images.shape[0])
    for k, idx in enumerate(parts):
        np.save(os.path.join(sub, "img_emb", f"img_emb_{k:04d}.npy"), images[idx].astype(dtype))
        np.save(os.path.join(sub, "text_emb", f"text_emb_{k:04d}.npy"), texts[idx].astype(dtype))
        pq.write_table(pa.table({"image_path": [str(i) for i in idx], "caption": [caps[i] for i in idx],
                                 "NSFW": ["UNLIKELY"] * len(idx), "LICENSE": ["?"] * len(idx)}),
                       os.path.join(sub + "-metadata", f"metadata_{k:04d}.parquet"))
    return np.concatenate(parts)


def datacomp(root, arrays, sizes, *, dtype=np.float16, seed=0, compressed=False):
    """{shard:08d}.npz holding ``arrays`` (name -> [n, ...]) next to {shard:08d}.parquet (uid, text)."""
    root = str(root)
    os.makedirs(root, exist_ok=True)
    n = len(next(iter(arrays.values())))
    parts = deal(n, sizes, seed)
    caps = captions_of(n)
    save = np.savez_compressed if compressed else np.savez
    for k, idx in enumerate(parts):
        save(os.path.join(root, f"{k:08d}.npz"),
             **{a: (v[idx].astype(dtype) if v.dtype.kind == "f" else v[idx]) for a, v in arrays.items()})
        pq.write_table(pa.table({"uid": [f"{i:032x}" for i in idx], "text": [caps[i] for i in idx]}),
                       os.path.join(root, f"{k:08d}.parquet"))
    return np.concatenate(parts)


def list_column(x, *, fixed=True):
    """An Arrow list column of the rows of ``x`` (fixed-size or variable lists)."""
    values = pa.array(np.ascontiguousarray(x).reshape(-1))
    if fixed:
        return pa.FixedSizeListArray.from_arrays(values, x.shape[1])
    offsets = pa.array(np.arange(0, x.size + 1, x.shape[1], dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, values)


def parquet(root, columns, sizes, *, seed=0, hf=True, row_group_size=None, fixed=None):
    """Parquet shards (Hugging Face: data/train-{k:05d}-of-{K:05d}.parquet) of ``columns`` (name -> [n, d]
    arrays as list columns, or [n] lists of strings); ``fixed``: names written as fixed-size lists."""
    root = str(root)
    folder = os.path.join(root, "data") if hf else root
    os.makedirs(folder, exist_ok=True)
    n = len(next(iter(columns.values())))
    parts = deal(n, sizes, seed)
    fixed = set(fixed or ())
    for k, idx in enumerate(parts):
        cols = {c: (list_column(v[idx], fixed=c in fixed) if isinstance(v, np.ndarray) and v.ndim == 2
                    else pa.array([v[i] for i in idx])) for c, v in columns.items()}
        name = f"train-{k:05d}-of-{len(sizes):05d}.parquet" if hf else f"part_{k}.parquet"
        pq.write_table(pa.table(cols), os.path.join(folder, name), row_group_size=row_group_size)
    return np.concatenate(parts)
