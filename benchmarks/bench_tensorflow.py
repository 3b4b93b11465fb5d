"""pytest-gradcheck vs tf.test.compute_gradient on a sweep of TensorFlow ops, side by side.

    python benchmarks/bench_tensorflow.py             # every op, float64 and float32 (~1-2 min on 2 cores)
    python benchmarks/bench_tensorflow.py --json out.json

Each op is wrapped in ``tf.custom_gradient`` whose backward is TF's own registered gradient
(an inner GradientTape), so the correct case runs the same machinery as the buggy one; the
bug multiplies ONE entry of the input gradient by 1.05 (a 5% error), at the entry where the
true gradient is largest (so it is never hidden by a zero).

* this project: ``check_gradient(lambda x: sum(c * op(x)), x)`` with grad=None (the tape runs
  the custom rule), c a fixed random cotangent, default settings; float32 inputs get float64
  finite differences (the ops accept them).
* TensorFlow: ``tf.test.compute_gradient(op, [x])`` (its default step, in the input's dtype),
  verdict ``max |J_theoretical - J_numerical| < TOL[dtype]``, the form of TF's kernel tests
  (``self.assertLess(max_error, tol)``).  TOL: float64 1e-6, float32 5e-2 (the kernel-test
  tolerance of float32 gradient tests); the table also shows each max error, so other
  tolerances can be read off (e.g. the float32 column at 1e-3).

Columns: ok = correct op's verdict (a "fail" there is a false failure), bug = the 5% bug's
verdict (caught or missed), time = seconds for the two checks.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from pytest_gradcheck import check_gradient  # noqa: E402

#: compute_gradient's verdict: max abs difference of the two Jacobians below this
TOL = {"float64": 1e-6, "float32": 5e-2}
BUG = 1.05


def _rng(seed):
    return np.random.default_rng(seed)


def away_from_zero(shape, seed, low=0.2):
    """Values with |x| >= low: no op is evaluated at its kink (relu, abs, pooling ties)."""
    r = _rng(seed)
    return r.choice([-1.0, 1.0], size=shape) * r.uniform(low, 1.5, size=shape)


def positive(shape, seed):
    return _rng(seed).uniform(0.5, 2.0, size=shape)


def distinct(shape, seed):
    """A permutation of well-separated values: max, sort and top_k have no ties."""
    n = int(np.prod(shape))
    return (_rng(seed).permutation(n) * 0.37 - n * 0.15).reshape(shape)


def _c(a, x):
    return tf.constant(a, x.dtype)


K3 = _rng(7).normal(size=(3, 3, 2, 3))
A = _rng(8).normal(size=(4, 3))

#: name -> (op(x), input values)
OPS = {
    "exp": (tf.exp, _rng(1).normal(size=(3, 4))),
    "tanh": (tf.tanh, _rng(1).normal(size=(3, 4))),
    "sigmoid": (tf.sigmoid, _rng(1).normal(size=(3, 4))),
    "softplus": (tf.math.softplus, _rng(1).normal(size=(3, 4))),
    "sin": (tf.sin, _rng(1).normal(size=(3, 4))),
    "log": (tf.math.log, positive((3, 4), 2)),
    "sqrt": (tf.sqrt, positive((3, 4), 2)),
    "reciprocal": (tf.math.reciprocal, positive((3, 4), 2)),
    "square": (tf.square, _rng(1).normal(size=(3, 4))),
    "erf": (tf.math.erf, _rng(1).normal(size=(3, 4))),
    "relu": (tf.nn.relu, away_from_zero((3, 4), 3)),
    "abs": (tf.abs, away_from_zero((3, 4), 3)),
    "reduce_sum": (lambda x: tf.reduce_sum(x, axis=1), _rng(1).normal(size=(3, 4))),
    "reduce_mean": (lambda x: tf.reduce_mean(x, axis=0), _rng(1).normal(size=(3, 4))),
    "reduce_max": (lambda x: tf.reduce_max(x, axis=1), distinct((3, 4), 4)),
    "reduce_prod": (lambda x: tf.reduce_prod(x, axis=1), away_from_zero((3, 4), 3, 0.5)),
    "logsumexp": (lambda x: tf.reduce_logsumexp(x, axis=1), _rng(1).normal(size=(3, 4))),
    "norm": (lambda x: tf.norm(x, axis=1), _rng(1).normal(size=(3, 4))),
    "matmul": (lambda x: tf.matmul(x, _c(A, x)), _rng(1).normal(size=(3, 4))),
    "gram": (lambda x: tf.matmul(x, x, transpose_b=True), _rng(1).normal(size=(3, 4))),
    "inv": (tf.linalg.inv, _rng(5).normal(size=(3, 3)) + 3 * np.eye(3)),
    "det": (tf.linalg.det, _rng(5).normal(size=(3, 3)) + 3 * np.eye(3)),
    "solve": (lambda x: tf.linalg.solve(x, _c(A[:3], x)), _rng(5).normal(size=(3, 3)) + 3 * np.eye(3)),
    "cholesky": (lambda x: tf.linalg.cholesky(tf.matmul(x, x, transpose_b=True) + _c(np.eye(3), x)),
                 _rng(5).normal(size=(3, 3))),
    "softmax": (tf.nn.softmax, _rng(1).normal(size=(3, 4))),
    "log_softmax": (tf.nn.log_softmax, _rng(1).normal(size=(3, 4))),
    "conv2d": (lambda x: tf.nn.conv2d(x, _c(K3, x), 1, "SAME"), _rng(6).normal(size=(1, 5, 5, 2))),
    "max_pool2d": (lambda x: tf.nn.max_pool2d(x, 2, 2, "VALID"), distinct((1, 4, 4, 2), 9)),
    "avg_pool2d": (lambda x: tf.nn.avg_pool2d(x, 2, 2, "VALID"), _rng(6).normal(size=(1, 4, 4, 2))),
    "sort": (lambda x: tf.sort(x, axis=-1), distinct((3, 4), 10)),
    "top_k": (lambda x: tf.math.top_k(x, k=2).values, distinct((3, 5), 11)),
    "cumsum": (lambda x: tf.cumsum(x, axis=1), _rng(1).normal(size=(3, 4))),
}


def with_rule(op, entry: int | None, factor: float):
    """op as a tf.custom_gradient whose backward is TF's registered gradient (an inner tape), with
    the input gradient's flat entry ``entry`` multiplied by ``factor`` (None: no bug)."""
    @tf.custom_gradient
    def f(x):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = op(x)

        def backward(dy):
            g = tape.gradient(y, x, output_gradients=dy)
            if entry is not None:
                scale = np.ones(int(np.prod(x.shape)))
                scale[entry] = factor
                g = g * tf.reshape(tf.constant(scale, g.dtype), tf.shape(g))
            return g
        return y, backward
    return f


def cotangent(op, x0):
    y = op(tf.constant(x0))
    return _rng(99).normal(size=tuple(y.shape))


def worst_entry(op, x0, c):
    """The flat input entry where |d sum(c * op(x)) / dx| is largest: a bug there cannot hide."""
    x = tf.constant(x0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = tf.reduce_sum(_c(c, x) * op(x))
    return int(np.argmax(np.abs(tape.gradient(s, x).numpy()).ravel()))


def ours(op, x0, dtype, c):
    x = tf.constant(x0, dtype)

    def fun(p):
        return tf.reduce_sum(_c(c, p) * op(p))

    t = time.perf_counter()
    r = check_gradient(fun, x)
    return r.status, time.perf_counter() - t, r.max_ratio


def theirs(op, x0, dtype):
    x = tf.constant(x0, dtype)
    t = time.perf_counter()
    theo, num = tf.test.compute_gradient(op, [x])
    err = max(float(np.max(np.abs(a - b))) for a, b in zip(theo, num))
    return ("pass" if err < TOL[dtype] else "fail"), time.perf_counter() - t, err


def run(names, dtypes):
    rows = []
    for dtype in dtypes:
        for name in names:
            op, x0 = OPS[name]
            c = cotangent(op, x0)
            k = worst_entry(op, x0, c)
            good, bad = with_rule(op, None, 1.0), with_rule(op, k, BUG)
            o_ok, o_t1, o_r1 = ours(good, x0, dtype, c)
            o_bug, o_t2, o_r2 = ours(bad, x0, dtype, c)
            t_ok, t_t1, t_e1 = theirs(good, x0, dtype)
            t_bug, t_t2, t_e2 = theirs(bad, x0, dtype)
            rows.append(dict(op=name, dtype=dtype, n=int(np.size(x0)), entry=k,
                             ours_ok=o_ok, ours_bug=o_bug, ours_time=o_t1 + o_t2, ours_ratio_ok=o_r1,
                             tf_ok=t_ok, tf_bug=t_bug, tf_time=t_t1 + t_t2, tf_err_ok=t_e1, tf_err_bug=t_e2))
    return rows


def table(rows):
    out = [f"{'op':<12} {'dtype':<8} {'n':>3} | {'ours ok':>8} {'ours bug':>9} {'time':>6} | "
           f"{'tf ok':>6} {'tf bug':>7} {'time':>6} {'tf err ok':>10} {'tf err bug':>10}"]
    for r in rows:
        out.append(f"{r['op']:<12} {r['dtype']:<8} {r['n']:>3} | {r['ours_ok']:>8} "
                   f"{'caught' if r['ours_bug'] == 'fail' else 'MISSED':>9} {r['ours_time']:>6.2f} | "
                   f"{r['tf_ok']:>6} {'caught' if r['tf_bug'] == 'fail' else 'MISSED':>7} {r['tf_time']:>6.2f} "
                   f"{r['tf_err_ok']:>10.2e} {r['tf_err_bug']:>10.2e}")
    out.append("")
    for dtype in sorted({r["dtype"] for r in rows}, reverse=True):
        rs = [r for r in rows if r["dtype"] == dtype]
        n = len(rs)
        out.append(f"{dtype}: {n} ops | pytest-gradcheck: {sum(r['ours_ok'] != 'pass' for r in rs)} false failures, "
                   f"{sum(r['ours_bug'] == 'fail' for r in rs)}/{n} bugs caught, {sum(r['ours_time'] for r in rs):.1f} s"
                   f" | compute_gradient (tol {TOL[dtype]:g}): {sum(r['tf_ok'] != 'pass' for r in rs)} false failures, "
                   f"{sum(r['tf_bug'] == 'fail' for r in rs)}/{n} bugs caught, {sum(r['tf_time'] for r in rs):.1f} s")
        for alt in ((1e-3,) if dtype == "float32" else (1e-4,)):
            out.append(f"{'':>9}compute_gradient at tol {alt:g} instead: "
                       f"{sum(r['tf_err_ok'] >= alt for r in rs)} false failures, "
                       f"{sum(r['tf_err_bug'] >= alt for r in rs)}/{n} bugs caught")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", nargs="*", default=list(OPS), help="ops to run (default: all)")
    ap.add_argument("--dtypes", nargs="*", default=["float64", "float32"])
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    tf.keras.utils.set_random_seed(0) if hasattr(tf, "keras") else None
    rows = run(args.ops, args.dtypes)
    print(f"TensorFlow {tf.__version__}; bug: one input-gradient entry x{BUG}; compute_gradient verdict: "
          f"max |J_theoretical - J_numerical| < {TOL}")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
