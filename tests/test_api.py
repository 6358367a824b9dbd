"""The public API is a flat, explicit list."""

import inspect

import clipcore


def test_all_names_exist_and_are_documented():
    for name in clipcore.__all__:
        obj = getattr(clipcore, name)
        if name.startswith("__"):
            continue
        assert inspect.getdoc(obj), f"clipcore.{name} has no docstring"


def test_issue_contract_names():
    # Names an issue gives are a public contract.
    for name in ("sce", "vendi", "rke", "fit_editor", "Editor", "SCEResult"):
        assert name in clipcore.__all__
    for attr in ("sce", "text_score", "image_score", "complement_eigenvalues", "text_eigenvalues",
                 "trace_complement", "trace_text", "sigma", "method", "convention"):
        assert attr in clipcore.SCEResult._fields
    for meth in ("nullify", "focus", "defocus", "nullify_i2t", "nullify_t2t"):
        assert callable(getattr(clipcore.Editor, meth))
    params = inspect.signature(clipcore.sce).parameters
    for p in ("kernel", "sigma", "rff_features", "omega", "key", "method", "convention", "dtype"):
        assert params[p].kind is inspect.Parameter.KEYWORD_ONLY
    vparams = inspect.signature(clipcore.vendi).parameters
    for p in ("kernel", "sigma", "order", "rff_features", "omega", "key"):
        assert p in vparams
