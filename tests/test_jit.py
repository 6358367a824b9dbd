"""Compilation behaviour: jit == eager, and repeated calls do not recompile."""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src import dispatch

import clipcore
from clipcore.schur import schur_dual, schur_primal


@contextlib.contextmanager
def count_compiles():
    """Count XLA backend compilations (jit and op-by-op) inside the block."""
    events = []

    def listener(event, duration, **kwargs):
        if event == dispatch.BACKEND_COMPILE_EVENT:
            events.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield events
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


@pytest.fixture(scope="module")
def pairs():
    d = clipcore.synthetic_pairs(n=300, d=16, num_modes=3, seed=5)
    return d.images, d.texts


@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(kernel="gaussian", rff_features=64, key=1), dict(kernel="gaussian", sigma=3.0),
     dict(dtype="float32"), dict(convention="clip-dissection")],
)
def test_second_call_does_not_recompile(pairs, kwargs):
    images, texts = pairs
    first = clipcore.sce(images, texts, **kwargs)
    rng = np.random.default_rng(0)
    images2 = (images + 0.01 * rng.standard_normal(images.shape)).astype(np.float32)
    with count_compiles() as events:
        second = clipcore.sce(images2, texts, **kwargs)
    assert events == [], f"{len(events)} compilations on the second call"
    assert second.sce != first.sce  # it really recomputed


def test_vendi_second_call_does_not_recompile(pairs):
    images, _ = pairs
    clipcore.vendi(images, order=2.0)
    with count_compiles() as events:
        clipcore.vendi(images * 2.0, order=2.0)
    assert events == []


def test_schur_jit_equals_eager(pairs):
    images, texts = pairs
    n = images.shape[0]
    t = np.asarray(texts, np.float64)
    x = np.asarray(images, np.float64)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    c = (t.T @ t / n, t.T @ x / n, x.T @ x / n)
    jitted = schur_primal(*c, 1e-6)
    with jax.disable_jit():
        eager = schur_primal(*[jnp.asarray(a) for a in c], 1e-6)
    for a, b in zip(jitted[:3], eager[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-13)
    kt, kx = t @ t.T / n, x @ x.T / n
    jd = schur_dual(kt, kx, 1e-6, pad_to=16)
    with jax.disable_jit():
        ed = schur_dual(jnp.asarray(kt), jnp.asarray(kx), 1e-6, pad_to=16)
    for a, b in zip(jd[:3], ed[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


def test_editor_is_a_pytree_through_jit(pairs):
    images, texts = pairs
    ed = clipcore.fit_editor(images, texts)
    f = jax.jit(lambda e, x, t: e.nullify(x, t))
    np.testing.assert_allclose(f(ed, images[:5], texts[:5]), ed.nullify(images[:5], texts[:5]), rtol=1e-10, atol=1e-12)


def test_compile_counter_sees_compilations():
    # positive control for count_compiles: a fresh shape must compile
    with count_compiles() as events:
        jax.jit(lambda a: a * 3.0 + 1.0)(jnp.ones((7, 3)))
    assert len(events) >= 1
