"""`clipcore score`, `clipcore edit`, `clipcore demo`: SCE (Scendi) / Vendi / RKE and Conditional /
Information Vendi of paired embeddings, prompt edits, and a seeded demo.

Errors in the input are reported in one line (``clipcore: error: ...``) with
exit status 2 (:func:`clipcore.cli.main`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

from .._options import DEFAULT_ESTIMATE, ESTIMATES, TAIL_ESTIMATES, x64
from ._common import (add_kernel_options, add_pair_inputs, environment, inputs_provenance, kernel_kwargs,
                      pairing_lines, read_pair, source_kwargs, table, write_json)

__all__ = ["add_commands", "cmd_score", "cmd_edit", "cmd_demo", "score_payload", "conditional_kwargs"]


def _parse_orders(text: str) -> list[float]:
    out = []
    for tok in text.split(","):
        tok = tok.strip().lower()
        if not tok:
            continue
        out.append(float("inf") if tok in ("inf", "infinity") else float(tok))
    return out



# ----------------------------------------------------------------- commands
#: The options of ``clipcore.sce`` that ``clipcore.conditional_vendi`` takes as they are.
_CONDITIONAL_KW = ("kernel", "rff_features", "key", "dtype", "backend", "progress", "landmarks", "landmark_method",
                   "estimate", "block_size")


def conditional_kwargs(kw: dict) -> dict:
    """``clipcore.conditional_vendi``'s options from ``clipcore.sce``'s: the same kernel, features, seed and
    precision; a given σ for both modalities (None: the median heuristic of each). A saved ω (``omega``) is
    for the images' space, not the joint's [x/σ_x, t/σ_t]: then Conditional Vendi takes its own path (the
    exact kernels up to ``EXACT_ROWS`` rows, Nyström beyond)."""
    out = {k: kw[k] for k in _CONDITIONAL_KW if kw.get(k) is not None}
    if out.get("estimate") not in (None, *TAIL_ESTIMATES):
        out.pop("estimate")  # "projected" covers SCE and Vendi; Conditional Vendi keeps its default tail model
    if kw.get("omega") is not None:
        out.pop("rff_features", None)
    if kw.get("sigma") is not None:
        out["sigma"] = kw["sigma"]
    return out  # one device: --devices shards SCE's primal sums; Conditional Vendi's exact kernels are n×n


def _conditional(images, texts, kw: dict, groups=None):
    """Conditional and Information Vendi (order 1) at the score's kernel: (result or None, why not)."""
    from ..conditional import conditional_vendi

    if kw.get("normalize"):
        if not isinstance(images, np.ndarray) or not isinstance(texts, np.ndarray):
            return None, "not computed: --normalize needs the rows in memory for Conditional Vendi"
        images, texts = (a / np.linalg.norm(a, axis=1, keepdims=True) for a in (images, texts))
    return conditional_vendi(images, texts, groups=groups, **conditional_kwargs(kw)), None


def score_payload(images, texts, kw: dict, orders: list[float], top: int, *,
                  conditional: bool = True, groups=None) -> tuple[dict, list]:
    """``sce`` with ``kw``, the Vendi ``orders`` of the images and (``conditional``) Conditional /
    Information Vendi at the same kernel: the JSON payload (scores, result summary, top eigenvalues,
    warnings) and the warnings' messages."""
    from ..entropy import renyi_score
    from ..scores import sce, vendi

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = sce(images, texts, **kw)
        seconds = time.perf_counter() - t0
        cond, why = (_conditional(images, texts, kw, groups) if conditional
                     else (None, "not computed (--no-conditional)"))
        cond_seconds = time.perf_counter() - t0 - seconds
    vendi_kw = {k: v for k, v in kw.items() if k not in ("convention", "rtol", "ridge")}
    if res.seed is not None and "key" not in vendi_kw and "omega" not in vendi_kw:
        vendi_kw["key"] = res.seed
    if res.sigma is not None:
        vendi_kw["sigma"] = res.sigma
    vendis = {}
    for a in orders:
        if res.nystrom is not None:
            # the tail estimate is part of the spectrum: Vendi of the images through their own landmarks
            vendis[str(a)] = vendi(_one_set(images), order=a, **vendi_kw).score
        elif kw.get("convention", "paper") == "paper":
            # Vendi is a spectrum of C_XX, which sce already decomposed: no second pass over the data
            with x64():  # the eigenvalues are float64; keep the score float64 too
                vendis[str(a)] = float(renyi_score(res.image_eigenvalues, a, res.clamp))
        else:
            vendis[str(a)] = vendi(_one_set(images), order=a, **vendi_kw).score
    summary = res.summary()
    summary["seconds"] = seconds
    error = {**({} if res.error is None else res.error._asdict()), **((cond and cond.error) or {})}
    payload = {
        "scores": {"sce": res.sce, "text_score": res.text_score, "image_score": res.image_score,
                   "log_sce": res.log_sce, "log_text_score": res.log_text_score,
                   "log_image_score": res.log_image_score,
                   "vendi": vendis,
                   "conditional_vendi": None if cond is None else cond.conditional_vendi,
                   "information_vendi": None if cond is None else cond.information_vendi,
                   "conditional_entropy": None if cond is None else cond.conditional_entropy,
                   "mutual_information": None if cond is None else cond.mutual_information,
                   "error": error or None},
        "result": summary,
        "conditional": ({**cond.summary(), "seconds": cond_seconds} if cond is not None
                        else {"computed": False, "reason": why}),
        "eigenvalues": {
            "count": int(res.complement_eigenvalues.shape[0]),
            "top": top,
            "complement": res.complement_eigenvalues[:top],
            "text": res.text_eigenvalues[:top],
            "image": res.image_eigenvalues[:top],
        },
        "warnings": [str(w.message) for w in caught],
    }
    if res.pairing is not None:
        payload["pairing"] = res.pairing
    if groups is not None:
        payload["groups"] = _group_payload(images, groups, vendi_kw, cond)
    return payload, [str(w.message) for w in caught]


def _print_scores(payload: dict, out=None) -> None:
    out = sys.stdout if out is None else out
    s, r = payload["scores"], payload["result"]
    err = s.get("error") or {}
    pm = (lambda k: f"± {err[k]:.3g}" if k in err else None) if err else (lambda k: None)  # noqa: E731
    rows = [
        ("SCE (Scendi; prompt-independent diversity)", s["sce"], pm("sce"), r["trace_complement"]),
        ("text score (prompt-explained)", s["text_score"], pm("text_score"), r["trace_text"]),
        ("image Vendi (order 1)", s["image_score"], pm("image_score"), r["trace_image"]),
    ]
    for a, v in s["vendi"].items():
        label = "RKE (Vendi order 2)" if float(a) == 2.0 else f"Vendi order {a}"
        rows.append((label, v, None, None))
    if s.get("conditional_vendi") is not None:
        rows += [("Conditional Vendi (images given prompts)", s["conditional_vendi"], pm("conditional_vendi"), None),
                 ("Information Vendi (prompt dependence)", s["information_vendi"], pm("information_vendi"), None)]
    header = ("score", "value", "± (approximation)", "trace") if err else ("score", "value", "trace")
    print(table(rows if err else [(a, b, d) for a, b, _, d in rows], header), file=out)
    sig = "-" if r["sigma"] is None else f"{r['sigma']:.6g}"
    print(
        f"\nkernel={r['kernel']} sigma={sig} method={r['method']} convention={r['convention']} "
        f"n={r['n']} features={r['num_features']} rank_kept={r['rank_kept']} rtol={r['rtol']:.3g} "
        f"dtype={r['dtype']} backend={r['backend']} seed={r['seed']} ({r['seconds']:.3f} s)",
        file=out,
    )
    print(_conditional_line(payload.get("conditional")), file=out)
    ny = r.get("nystrom")
    if ny:
        est = ", ".join(f"{k}: SCE {v['sce']:.4g} / text {v['text_score']:.4g}" for k, v in ny["estimates"].items())
        print(f"nyström: m={ny['landmarks']} ({ny['landmark_method']}) rank={ny['rank']} captured trace="
              f"{ny['captured_trace']:.4f} missing mass={ny['missing_mass']:.4f}; estimate={ny['estimate']} "
              f"({est})", file=out)
    for line in pairing_lines(payload.get("pairing")):
        print(line, file=out)
    g = payload.get("groups")
    if g:
        cond = f", mean Conditional Vendi {g['conditional']['mean_conditional_vendi']:.6g}" if "conditional" in g else ""
        print(f"per prompt ({g['count']} groups from {g['source']}): mean Vendi {g['vendi']['mean']:.6g}{cond} "
              "(each group's images scored alone; every group in the JSON)", file=out)
    for w in payload.get("warnings", []):
        print(f"warning: {w}", file=out)


def _conditional_line(c: dict | None) -> str:
    """How Conditional / Information Vendi were computed (or why not), on one line."""
    if not c or not c.get("computed", True):
        return f"conditional vendi: {(c or {}).get('reason', 'not computed')}"
    sig = "-" if c["sigma_images"] is None else f"({c['sigma_images']:.6g}, {c['sigma_texts']:.6g})"
    feats = ", ".join(f"{k} {v}" for k, v in c["num_features"].items())
    return (f"conditional vendi: kernel={c['kernel']} sigma (images, texts)={sig} order={c['order']} "
            f"method={c['method']} features=({feats}) dtype={c['dtype']} ({c.get('seconds', 0.0):.3f} s)")


def _score_inputs(args: argparse.Namespace):
    """``--images`` / ``--texts`` as one paired source with the file options (``.npz`` / Parquet keys, shards
    paired by number, ``--skip-incomplete``), streamed when large; ``(source, None)``."""
    from .._pipeline.inputs import file_source, resolve_source_options

    return file_source(args.images, args.texts, resolve_source_options(**source_kwargs(args))), None


def _one_set(images):
    """The images column alone for the separate Vendi calls: the same rows (a paired source of files keeps
    its complete pairs), without reading the texts again."""
    from ..sources import PairedSource

    if type(images) is PairedSource and images.iterator is None and images.texts is not None:
        return PairedSource(images.images, None, single=True, name="x")
    return images


def _score_groups(args: argparse.Namespace, images):
    """``--groups``: ``captions`` (the caption column of the folder's per-row metadata as prompt ids, over the
    shards the scores read) or an ``.npy`` of ``[n]`` ids; None without the flag."""
    if getattr(args, "groups", None) is None:
        return None
    if args.groups == "captions":
        if not getattr(images, "shards", None):
            raise ValueError("groups: 'captions' reads the caption column of per-row metadata (clip-retrieval / "
                             "LAION metadata_N.parquet, DataComp {shard}.parquet, a Parquet caption column); "
                             f"{args.images} has none: pass --groups IDS.npy")
        return images.groups()
    if not os.path.isfile(args.groups):
        raise FileNotFoundError(f"groups: file not found: {args.groups} (or pass --groups captions)")
    ids = np.load(args.groups, allow_pickle=False)
    if ids.ndim != 1:
        raise ValueError(f"groups: {args.groups} holds shape {list(ids.shape)}; expected [n] ids, one per row")
    return ids


def _group_payload(images, groups, vendi_kw: dict, cond) -> dict:
    """Vendi (order 1) of each group's images alone and, when computed, Conditional Vendi per group."""
    from ..scores import vendi

    v = vendi(_one_set(images), order=1.0, groups=groups, **{k: x for k, x in vendi_kw.items() if k != "mesh"})
    out = {"count": len(v.groups.ids), "vendi": v.groups.summary(pooled=False)}
    if cond is not None and cond.groups is not None:
        out["conditional"] = cond.groups.summary()
    return out


def cmd_score(args: argparse.Namespace) -> int:
    if getattr(args, "distributed", False):
        if getattr(args, "groups", None) is not None:
            raise ValueError("groups: per-prompt scores read each group's rows again; not with --distributed")
        return _cmd_score_distributed(args)
    images, texts = _score_inputs(args)
    groups = _score_groups(args, images)
    payload, _ = score_payload(images, texts, _score_kwargs(args), _parse_orders(args.vendi_orders),
                                args.top_eigenvalues, conditional=not args.no_conditional, groups=groups)
    if groups is not None:
        payload["groups"]["source"] = args.groups
    return _emit_score(args, payload)


def _score_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments of ``clipcore.sce`` from the ``score`` flags."""
    kw = kernel_kwargs(args)
    kw.update(method=args.method, backend=args.backend, progress=False if args.quiet else None)
    if args.landmarks is not None:
        kw.update(landmarks=args.landmarks, landmark_method=args.landmark_method, estimate=args.estimate)
    if getattr(args, "devices", None) is not None:
        kw.update(mesh=args.devices)
    return kw


def _emit_score(args: argparse.Namespace, payload: dict, **extra) -> int:
    """Add provenance, print the table, write the JSON."""
    payload["command"] = "score"
    payload["inputs"] = inputs_provenance(args)
    payload["environment"] = environment()
    payload.update(extra)
    if not args.quiet:
        _print_scores(payload)
    if args.json:
        write_json(args.json, payload)
        if not args.quiet:
            print(f"wrote {args.json}")
    return 0


def _cmd_score_distributed(args: argparse.Namespace) -> int:
    """``score --distributed``: this process scores its own shards; sums added across processes."""
    from .. import distributed as dist

    # the CPU collectives are chosen here, where the distributed run starts (this process only)
    info = dist.initialize(args.coordinator, args.num_processes, args.process_id, cpu_collectives="gloo")
    src = dist.distributed_source(args.images, args.texts)
    try:
        # Conditional Vendi has no cross-process sums (its joint kernel pairs rows of every process)
        payload, _ = score_payload(src, None, _score_kwargs(args), _parse_orders(args.vendi_orders),
                                    args.top_eigenvalues, conditional=False)
        payload["conditional"]["reason"] = "not computed with --distributed (no cross-process sums)"
    except RuntimeError as exc:  # a peer died: one line, and no shutdown barrier (it would abort)
        print(f"clipcore: error: {exc}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(2)
    distributed = {"num_processes": info.num_processes, "process_id": info.process_id,
                   "shards": len(dist.shard_files(args.images, args.texts)),
                   "shards_per_process": "round-robin by sorted file name"}
    if not dist.is_writer():
        return 0  # process 0 prints and writes
    return _emit_score(args, payload, distributed=distributed)


def cmd_edit(args: argparse.Namespace) -> int:
    from ..editing import fit_editor
    from ..io import load_embeddings

    images, texts, pairing = read_pair(args.images, args.texts, args, nonzero=args.kernel == "cosine")
    q_img = np.asarray(load_embeddings(args.query_images, name="query_images")) if args.query_images else images
    q_txt = np.asarray(load_embeddings(args.query_texts, name="query_texts")) if args.query_texts else texts
    if args.mode in ("nullify", "focus", "defocus", "i2t") and q_img.shape[0] != q_txt.shape[0]:
        raise ValueError(
            f"query_texts: {q_txt.shape[0]} rows but query_images has {q_img.shape[0]}; queries are paired by row"
        )
    kw = kernel_kwargs(args)
    editor = fit_editor(images, texts, **kw)
    if args.mode == "nullify":
        out = editor.nullify(q_img, q_txt, args.strength)
    elif args.mode == "focus":
        out = editor.focus(q_img, q_txt, args.strength)
    elif args.mode == "defocus":
        out = editor.defocus(q_img, q_txt, args.strength)
    elif args.mode == "i2t":
        out = editor.nullify_i2t(q_txt, q_img, args.strength)
    else:  # t2t
        if args.other_texts is None:
            raise ValueError("other_texts: --mode t2t needs --other-texts (the prompts whose influence to remove)")
        other = np.asarray(load_embeddings(args.other_texts, name="other_texts"))
        if other.shape[0] != q_txt.shape[0]:
            raise ValueError(f"other_texts: {other.shape[0]} rows but the texts to edit have {q_txt.shape[0]}")
        out = editor.nullify_t2t(q_txt, other, args.strength)
    out = np.asarray(out)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.save(args.out, out)
    meta = {
        "command": "edit", "mode": args.mode, "strength": args.strength, "output": os.path.abspath(args.out),
        "output_shape": list(out.shape), "kernel": editor.kernel, "sigma": editor.sigma, "seed": editor.seed,
        "convention": editor.convention, "feature_space": "rff" if editor.fmap.kind == "rff" else "embedding",
        "inputs": inputs_provenance(args), "environment": environment(),
    }
    if pairing is not None:
        meta["pairing"] = pairing
    if args.json:
        write_json(args.json, meta)
    if not args.quiet:
        print(f"edited {out.shape[0]} embeddings ({args.mode}, strength {args.strength}) -> {args.out} {out.shape}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..datasets import synthetic_pairs
    from ..kernels import median_sigma

    rows, results = [], {}
    models = {
        "diverse (8 image modes)": dict(num_modes=8, mode_strength=0.6),
        "collapsed (1 image mode)": dict(num_modes=1, mode_strength=0.6),
    }
    data = {label: synthetic_pairs(n=args.n, d=args.d, num_prompts=10, seed=args.seed, **extra)
            for label, extra in models.items()}
    # one kernel for both generators: σ from their pooled images (each set's own median would rescale
    # each generator's kernel differently and make the scores incomparable)
    sigma = median_sigma(np.concatenate([d.images for d in data.values()]))
    gauss = dict(kernel="gaussian", sigma=sigma, rff_features=args.rff_features, key=args.seed)
    for label, d in data.items():
        for kernel, kw in (("cosine", {}), ("gaussian RFF", gauss)):
            payload, _ = score_payload(d.images, d.texts, kw, [2.0], top=20, conditional=False)
            results[f"{label} / {kernel}"] = payload
            s = payload["scores"]
            rows.append((label, kernel, s["sce"], s["text_score"], s["image_score"], s["vendi"]["2.0"]))
    if not args.quiet:
        print(f"clipcore demo: seeded synthetic pairs (n={args.n}, d={args.d}, seed={args.seed}); "
              f"two simulated generators for the same 10 prompts, compared at one kernel (Gaussian σ = "
              f"{sigma:.4g}, the median distance of their pooled images; one ω)\n")
        print(table(rows, ("generator", "kernel", "SCE", "text score", "Vendi", "RKE")))
    payload = {"command": "demo", "n": args.n, "d": args.d, "seed": args.seed, "sigma": sigma, "results": results,
               "environment": environment()}
    write_json(args.json, payload)
    if not args.quiet:
        print(f"\nwrote {args.json}")
    return 0


# ------------------------------------------------------------------- parser
def add_commands(sub) -> None:
    """Register ``score``, ``edit`` and ``demo`` on the ``clipcore`` subparsers."""
    _add_score(sub)
    _add_edit(sub)
    _add_demo(sub)


def _add_score(sub) -> None:
    s = sub.add_parser("score", help="SCE (Scendi), text score, Vendi, RKE, Conditional / Information Vendi",
                       description="Score paired image/text embeddings: SCE (Scendi; Ospanov et al. 2024), its "
                                   "text part, Vendi and RKE, and Conditional / Information Vendi (Jalali et al. "
                                   "2024) at the same kernel. Prints a table; --json writes scores with "
                                   "provenance.")
    add_pair_inputs(s)
    add_kernel_options(s)
    s.add_argument("--method", choices=("auto", "primal", "dual"), default="auto",
                   help="primal (D×D), dual (n×n) or auto (the smaller)")
    s.add_argument("--backend", choices=("auto", "jax", "ffi"), default="auto",
                   help="covariance accumulation: pure JAX or the compiled core")
    ny = s.add_argument_group("large n (Gaussian kernel)")
    ny.add_argument("--landmarks", type=int, default=None, metavar="M",
                    help="Nyström with M landmarks (shared by texts and images): one streamed pass, M×M memory")
    ny.add_argument("--landmark-method", choices=("pivoted-cholesky", "kmeans++", "uniform"),
                    default="pivoted-cholesky", help="landmark selection (seeded by --seed; default pivoted-cholesky)")
    ny.add_argument("--estimate", choices=ESTIMATES, default=DEFAULT_ESTIMATE,
                    help=f"how the mass Nyström misses enters the scores (default {DEFAULT_ESTIMATE}; every estimate "
                         "is in the JSON; Conditional Vendi takes 'residual' where 'projected' is asked)")
    s.add_argument("--vendi-orders", default="1,2,inf", help="Vendi orders to report (default 1,2,inf)")
    s.add_argument("--groups", default=None, metavar="captions|IDS.npy",
                   help="per-prompt scores: 'captions' (each row's caption in the folder's metadata is its prompt "
                        "id) or an .npy of [n] prompt / class ids; Vendi and Conditional Vendi of each group's rows "
                        "alone and their means (printed, and every group in the JSON under 'groups')")
    s.add_argument("--top-eigenvalues", type=int, default=100, help="eigenvalues kept in the JSON (default 100)")
    s.add_argument("--no-conditional", action="store_true",
                   help="skip Conditional / Information Vendi (order 1; exact n×n kernels up to 7,168 rows, "
                        "Nyström or random features beyond)")
    s.add_argument("--json", default=None, metavar="OUT.json", help="write the scores and provenance here")
    s.add_argument("--quiet", action="store_true", help="print nothing")
    dg = s.add_argument_group("multi-device and multi-process (see README 'Sharded and multi-process "
                              "scoring')")
    dg.add_argument("--devices", type=int, default=None, metavar="K",
                    help="shard the rows over K of this process's devices (jax Mesh; one psum of the D×D sums); "
                         "primal paths: cosine, --rff-features, --landmarks (on CPU set "
                         "XLA_FLAGS=--xla_force_host_platform_device_count=K to have K devices)")
    dg.add_argument("--distributed", action="store_true",
                    help="one of several processes (jax.distributed, gloo CPU collectives): each scores its own "
                         "shard files (round-robin), the sums are added across processes, process 0 writes")
    dg.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                    help="process 0's coordinator address (default $CLIPCORE_COORDINATOR, or JAX's own)")
    dg.add_argument("--num-processes", type=int, default=None, metavar="N",
                    help="number of processes (default $CLIPCORE_NUM_PROCESSES, or JAX's own)")
    dg.add_argument("--process-id", type=int, default=None, metavar="I",
                    help="this process's id in [0, N) (default $CLIPCORE_PROCESS_ID, or JAX's own)")
    s.set_defaults(func=cmd_score)


def _add_edit(sub) -> None:
    e = sub.add_parser("edit", help="nullify / focus / defocus a prompt's influence in embeddings",
                       description="Fit A* on the reference pairs (--images, --texts) and edit query embeddings: "
                                   "out = φ(image) − λ φ(text) A*, λ = strength (nullify), −strength (focus), "
                                   "1 + strength (defocus). i2t removes an image's influence from its text; t2t "
                                   "removes --other-texts' influence from the texts.")
    add_pair_inputs(e)
    add_kernel_options(e)
    e.add_argument("--query-images", default=None, help="image embeddings to edit (default: --images)")
    e.add_argument("--query-texts", default=None, help="their prompts (default: --texts)")
    e.add_argument("--other-texts", default=None, help="t2t: prompts whose influence to remove")
    e.add_argument("--mode", choices=("nullify", "focus", "defocus", "i2t", "t2t"), default="nullify")
    e.add_argument("--strength", type=float, default=1.0, help="edit strength (default 1)")
    e.add_argument("--out", required=True, metavar="OUT.npy", help="where to save the edited embeddings")
    e.add_argument("--json", default=None, metavar="OUT.json", help="write provenance here")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=cmd_edit)


def _add_demo(sub) -> None:
    d = sub.add_parser("demo", help="score seeded synthetic data (no files needed)",
                       description="Generate seeded paired embeddings for two simulated generators (diverse vs "
                                   "collapsed), print their scores and write JSON.")
    d.add_argument("--n", type=int, default=2000, help="pairs per generator (default 2000)")
    d.add_argument("--d", type=int, default=64, help="embedding dimension (default 64)")
    d.add_argument("--rff-features", type=int, default=500, help="RFF frequencies for the Gaussian kernel")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--json", default="clipcore_demo.json", help="output JSON (default clipcore_demo.json)")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)
