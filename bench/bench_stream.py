"""Cosine SCE at large n, in memory and streamed from disk, against its floor.

Measured side by side in one run (issue 3, "Speed"):

1. in memory: clipcore.sce(images, texts) against the bare NumPy
   ``Z.T @ Z`` with Z = [texts | images] (n × 2d, float32): the FLOP floor
   (one syrk gives all three covariances);
2. from ``.npy`` files on disk: clipcore.sce(images.npy, texts.npy), streamed
   in blocks, against the floor that reads the same files block by block
   (``np.load(mmap_mode="r")`` slices) and accumulates ``Z_bᵀ Z_b``;
3. peak resident memory of the streamed run, in a fresh subprocess
   (``VmHWM``), against the size of the data on disk.

Usage: python bench/bench_stream.py [--n 1000000] [--d 512] [--dir /tmp/cc_stream]
       python bench/bench_stream.py --rss-only --n 10000000   (the 10⁷ memory goal)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def write_data(directory: str, n: int, d: int, chunk: int = 1 << 18) -> tuple[str, str]:
    """Seeded paired float32 embeddings written chunk by chunk (bounded memory)."""
    import clipcore

    os.makedirs(directory, exist_ok=True)
    paths = os.path.join(directory, f"images_{n}_{d}.npy"), os.path.join(directory, f"texts_{n}_{d}.npy")
    if all(os.path.exists(p) for p in paths):
        return paths
    mm = [np.lib.format.open_memmap(p, mode="w+", dtype=np.float32, shape=(n, d)) for p in paths]
    for k, start in enumerate(range(0, n, chunk)):
        stop = min(n, start + chunk)
        data = clipcore.synthetic_pairs(n=stop - start, d=d, num_prompts=50, num_modes=16, seed=k)
        mm[0][start:stop] = data.images
        mm[1][start:stop] = data.texts
    for m in mm:
        m.flush()
    del mm
    return paths


def floor_from_disk(paths, block: int) -> float:
    x = np.load(paths[0], mmap_mode="r")
    t = np.load(paths[1], mmap_mode="r")
    n, d = x.shape
    g = np.zeros((2 * d, 2 * d))
    t0 = time.perf_counter()
    for start in range(0, n, block):
        z = np.concatenate([t[start:start + block], x[start:start + block]], axis=1)
        g += z.T @ z
    return time.perf_counter() - t0


def peak_rss(paths, dtype: str | None) -> tuple[float, float]:
    """Run the streamed SCE in a fresh process; return (seconds, peak RSS GiB)."""
    code = (
        "import sys, time, clipcore\n"
        "t0 = time.perf_counter()\n"
        f"r = clipcore.sce({paths[0]!r}, {paths[1]!r}, dtype={dtype!r}, progress=False)\n"
        "dt = time.perf_counter() - t0\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(dt, int(hwm) / 2**20, r.sce)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--dir", default="/tmp/clipcore_stream_bench")
    ap.add_argument("--rss-only", action="store_true", help="only the streamed run's time and peak RSS")
    args = ap.parse_args()

    import jax

    import clipcore

    n, d = args.n, args.d
    print(f"# bench_stream {time.strftime('%Y-%m-%d')}  n={n} d={d}  jax {jax.__version__}  {os.cpu_count()} cpus")
    t0 = time.perf_counter()
    paths = write_data(args.dir, n, d)
    gib = 2 * n * d * 4 / 2**30
    print(f"data: {gib:.2f} GiB on disk in {args.dir} (written/checked in {time.perf_counter() - t0:.1f} s)")
    results: dict = {"n": n, "d": d, "disk_gib": gib}

    if not args.rss_only:
        # ---- in memory
        x = np.load(paths[0])
        t = np.load(paths[1])
        z = np.concatenate([t, x], axis=1)
        best = lambda f, r=3: min(_timed(f) for _ in range(r))  # noqa: E731
        floor = best(lambda: z.T @ z)
        del z
        print(f"\n## in memory ({n} pairs)\n{'variant':42s} {'time':>9s} {'/floor':>7s}")
        print(f"{'numpy Z.T @ Z (float32 syrk)':42s} {floor:8.2f}s {1.0:7.2f}")
        results["memory"] = {"floor_s": floor}
        for label, kw in (("clipcore dtype=float32", dict(dtype="float32")),
                          ("clipcore default (float64)", dict())):
            clipcore.sce(x[:1000], t[:1000], **kw)
            sec = best(lambda: clipcore.sce(x, t, progress=False, **kw))
            results["memory"][label] = sec
            print(f"{label:42s} {sec:8.2f}s {sec / floor:7.2f}")
        del x, t

        # ---- from disk
        block = 1 << 16
        floor_disk = min(floor_from_disk(paths, block) for _ in range(2))
        print(f"\n## from .npy files on disk (page cache warm)\n{'variant':42s} {'time':>9s} {'/floor':>7s}")
        print(f"{'numpy, same files block by block':42s} {floor_disk:8.2f}s {1.0:7.2f}")
        results["disk"] = {"floor_s": floor_disk}
        for label, kw in (("clipcore streamed dtype=float32", dict(dtype="float32")),
                          ("clipcore streamed default (float64)", dict())):
            sec = best(lambda: clipcore.sce(paths[0], paths[1], progress=False, **kw), 2)
            results["disk"][label] = sec
            print(f"{label:42s} {sec:8.2f}s {sec / floor_disk:7.2f}")

    # ---- peak memory of a streamed run
    print("\n## streamed run in a fresh process: time and peak resident memory")
    for dtype in ("float32", None):
        sec, rss = peak_rss(paths, dtype)
        results[f"rss_{dtype}"] = {"seconds": sec, "peak_rss_gib": rss}
        print(f"dtype={dtype}: {sec:8.1f} s, peak RSS {rss:.2f} GiB for {gib:.1f} GiB of data")
    print("\n" + json.dumps(results, indent=1))
    return 0


def _timed(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
