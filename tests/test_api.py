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


def test_conditional_vendi_and_groups_are_public():
    # Conditional / Information Vendi and the per-group views are part of the flat API.
    for name in ("conditional_vendi", "ConditionalVendiResult", "ConditionalGroupScores", "GroupedScores"):
        assert name in clipcore.__all__
    from clipcore import conditional, groups

    assert clipcore.conditional_vendi is conditional.conditional_vendi
    assert clipcore.GroupedScores is groups.GroupedScores
    for attr in ("conditional_vendi", "information_vendi", "conditional_entropy", "mutual_information",
                 "joint_entropy", "image_entropy", "text_entropy", "sigma_images", "sigma_texts", "order", "top_k",
                 "groups", "error"):
        assert attr in clipcore.ConditionalVendiResult._fields
    assert "groups" in clipcore.VendiResult._fields
    for fn in (clipcore.vendi, clipcore.rke, clipcore.conditional_vendi):
        assert inspect.signature(fn).parameters["groups"].kind is inspect.Parameter.KEYWORD_ONLY
