"""clipcore: diversity scores and embedding editing for very large sets of CLIP embeddings.

Schur Complement Entropy (Ospanov, Farnia & Jalali 2024, "Dissecting CLIP:
Decomposition with a Schur Complement-based Approach", arXiv:2412.18645),
Conditional and Information Vendi (Jalali, Ospanov, Gohari & Farnia 2024,
arXiv:2411.02817), Vendi and RKE scores, and prompt nullify / focus /
defocus, in JAX with a compiled C++ core reached through XLA FFI.

The public API is this flat list; submodules are implementation detail except
the math modules re-exported below for users who compose their own jit-able
pipelines.
"""

from .covariance import Covariances, feature_covariance, joint_covariances
from .editing import Editor, fit_editor
from .entropy import matrix_entropy, matrix_entropy_score, renyi_entropy, renyi_score
from .kernels import FeatureMap, cosine_features, features, gaussian_kernel, median_sigma, rff_features
from .schur import SchurSpectra, regression_coefficient, schur_dual, schur_matrices, schur_primal
from .results import (ApproximationWarning, DegenerateWarning, LowCaptureWarning, NystromInfo, SCEError, SCEResult,
                      VendiResult)
from .scores import rke, sce, vendi
from .comparison import CompareResult, ModelComparison, compare
from .conditional import ConditionalGroupScores, ConditionalVendiResult, conditional_vendi
from .groups import GroupedScores
from .datasets import LabelledImages, PairedEmbeddings, digits, fashion_mnist, synthetic_pairs
from .sources import paired_source, row_source, write_shards
from .embed import EmbedResult, embed, load_clip
from .tables import ClipScoreResult, SimilarityTable, clip_score, similarity_table
from .modes import ModesResult, modes
from .metrics import ClusterMetrics, cluster_metrics
from .retrieval import RetrievalResult, retrieval
from . import distributed, functional, sharding

from ._version import __version__

__all__ = [
    # scores
    "sce",
    "vendi",
    "rke",
    "compare",
    "CompareResult",
    "ModelComparison",
    "SCEResult",
    "VendiResult",
    "DegenerateWarning",
    "LowCaptureWarning",
    "NystromInfo",
    "SCEError",
    "ApproximationWarning",
    "GroupedScores",
    # Conditional and Information Vendi
    "conditional_vendi",
    "ConditionalVendiResult",
    "ConditionalGroupScores",
    # editing
    "fit_editor",
    "Editor",
    # jit-able building blocks
    "FeatureMap",
    "features",
    "cosine_features",
    "rff_features",
    "gaussian_kernel",
    "median_sigma",
    "Covariances",
    "joint_covariances",
    "feature_covariance",
    "SchurSpectra",
    "schur_matrices",
    "schur_primal",
    "schur_dual",
    "regression_coefficient",
    "matrix_entropy",
    "matrix_entropy_score",
    "renyi_entropy",
    "renyi_score",
    # data and streaming sources
    "write_shards",
    "paired_source",
    "row_source",
    "PairedEmbeddings",
    "synthetic_pairs",
    "LabelledImages",
    "fashion_mnist",
    "digits",
    # encoder, CLIPScore, similarity tables, modes
    "load_clip",
    "embed",
    "EmbedResult",
    "clip_score",
    "ClipScoreResult",
    "similarity_table",
    "SimilarityTable",
    "modes",
    "ModesResult",
    # retrieval
    "retrieval",
    "RetrievalResult",
    # cluster metrics
    "cluster_metrics",
    "ClusterMetrics",
    # sharded and multi-process scoring
    "sharding",
    "distributed",
    "functional",
    "__version__",
]


def __getattr__(name: str):
    """``clipcore.models`` (Flax NNX models) is imported on first use, so ``import clipcore`` stays light."""
    if name in ("models", "encoder"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
