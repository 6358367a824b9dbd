"""Loading the shared reference fixtures (``/work/shared/reference``, see its README).

Tolerances are the README's: SCE / text component rel 1e-3 (the fixtures are
float32 torch outputs whose noise eigenvalues dominate the residual), cosine
rel 1e-5, correction embeddings abs 1e-4.  Numbers of ``spec_check.json``
computed in float64 are matched to ~1e-8 relative.
"""

from __future__ import annotations

import functools
import json
import pathlib

import numpy as np

# README tolerances (never widened to make something pass).
RTOL_SCE = 1e-3
RTOL_COSINE = 1e-5
ATOL_CORRECTION = 1e-4
RTOL_FLOAT64 = 1e-8

N = 500
D_IN = 64

# tag -> (sigma, number of RFF frequencies D); the primal dimension is 2D.
RFF_TAGS = {
    "gauss_s0.5_D200": (0.5, 200),
    "gauss_s3.5_D2500": (3.5, 2500),
    "gauss_s0.5_D2500": (0.5, 2500),
}
# n = 500 < 2D: S ~ 0 and the SCE is float32 noise (README: DEGENERATE).
DEGENERATE = {"gauss_s0.5_D2500"}


@functools.lru_cache(maxsize=None)
def _load_npy(path: str) -> np.ndarray:
    arr = np.load(path)
    arr.setflags(write=False)
    return arr


@functools.lru_cache(maxsize=None)
def _load_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def npy(ref_dir, name: str) -> np.ndarray:
    return _load_npy(str(pathlib.Path(ref_dir) / name))


def js(ref_dir, name: str) -> dict:
    return _load_json(str(pathlib.Path(ref_dir) / name))


def texts(ref_dir) -> np.ndarray:
    return npy(ref_dir, "text_feats.npy")


def images(ref_dir) -> np.ndarray:
    return npy(ref_dir, "image_feats.npy")


def text_queries(ref_dir) -> np.ndarray:
    return npy(ref_dir, "text_to_correct.npy")


def image_queries(ref_dir) -> np.ndarray:
    return npy(ref_dir, "image_to_correct.npy")


def omega(ref_dir, tag: str) -> np.ndarray:
    """The saved RFF frequencies [d, D], already divided by sigma."""
    return npy(ref_dir, f"omegas/{tag}_omegas.npy")


def reference_scores(ref_dir) -> dict:
    return js(ref_dir, "reference_scores.json")["scores"]


def spec_check(ref_dir) -> dict:
    return js(ref_dir, "spec_check.json")


def companion(ref_dir) -> dict:
    return js(ref_dir, "companion_scores.json")


def correction(ref_dir) -> dict:
    return js(ref_dir, "correction/correction_reference.json")


def eigs(ref_dir, tag: str, part: str) -> np.ndarray:
    """Reference eigenvalues (float32 torch eigh, unclamped), sorted descending.
    part: "complement" (S) or "textpart" (R)."""
    return np.sort(npy(ref_dir, f"eigs/{tag}_{part}_eigs.npy").astype(np.float64))[::-1]


# The gaussian correction call draws three frequency matrices after
# torch.manual_seed(0), in call order; the saved files are raw randn(d, D)
# (NOT divided by sigma).  randn_0 / sigma equals omegas/gauss_s0.5_D200_omegas.npy.
CORRECTION_SIGMA = 0.5
CORRECTION_DRAWS = {
    0: "correction/t2i_gauss_s0.5_D200_randn_0_query_text.npy",
    1: "correction/t2i_gauss_s0.5_D200_randn_1_query_image.npy",
    2: "correction/t2i_gauss_s0.5_D200_randn_2_Astar.npy",
}
# The CONSISTENT_OMEGAS alternative uses ONE ω for queries and A*: it is the
# third draw (randn_2, the one the code used for A*), not the omegas file.
CONSISTENT_DRAW = 2


def correction_omega(ref_dir, draw: int) -> np.ndarray:
    """ω of the given draw of the gaussian correction call, divided by sigma."""
    return npy(ref_dir, CORRECTION_DRAWS[draw]).astype(np.float64) / CORRECTION_SIGMA
