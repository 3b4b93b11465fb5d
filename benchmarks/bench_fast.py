"""Fast mode vs full mode: evaluations of fun, wall time, and escape rates vs torch's fast-mode rule.

    python benchmarks/bench_fast.py            # n = 1e3, 1e4, 1e5 (full mode at 1e5 takes ~a minute)
    python benchmarks/bench_fast.py --quick    # n = 1e3, 1e4; fewer escape trials

The function is cheap on purpose (O(n) per evaluation: a coupled
sum of log-cosh terms) and accepts a batch of points, and both modes run with
vectorized=True, so that full mode at n = 1e5 (2e5 evaluations) is feasible;
the evaluation counts are the same as without batching.

Escape rates: one wrong entry (relative error 5%) at a random place in a
gradient of n = 2000, caught by (a) this package's fast mode (default K = 10
+-1 probes), (b) torch.autograd.gradcheck's fast-mode rule reimplemented for a
scalar output (u ~ U[0,1)^n / ||u||, v = 1, |a.u - n_u| <= atol*sum(u) +
rtol*|n_u|, atol 1e-5, rtol 1e-3, eps 1e-6), (c) one Gaussian probe with the
same n-independent tolerance (for comparison).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pytest_gradcheck.numerics.check import check_gradient  # noqa: E402


def model(n, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.5, 2.0, n)
    t = rng.standard_normal(n)

    def fun(w):  # also accepts a (B, n) batch of points: full mode then runs vectorised
        s = np.sum(w, axis=-1)
        return np.sum(np.log(np.cosh(c * (w - t))), axis=-1) + 0.5 * s * s / n

    def grad(w):
        return c * np.tanh(c * (w - t)) + np.sum(w) / n

    return fun, grad, rng.standard_normal(n)


def cheap_model(n, seed=0):
    """For full mode at n = 1e5: a quartic in 256 entries, quadratic and coupled in all (BLAS-cheap)."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.5, 2.0, n)
    k = min(n, 256)

    def fun(w):
        s = np.sum(w, axis=-1)
        q = np.einsum("...i,i,...i->...", w, c, w)
        return 0.5 * q + 0.25 * np.sum(w[..., :k] ** 4, axis=-1) + 0.5 * s * s / n

    def grad(w):
        g = c * w + np.sum(w) / n
        g[:k] += w[:k] ** 3
        return g

    return fun, grad, rng.standard_normal(n)


def wrong(grad, j, factor=1.05):
    def g(w):
        out = grad(w)
        out[j] *= factor
        return out
    return g


def torch_fast_rule(fun, grad, w, rng, eps=1e-6, atol=1e-5, rtol=1e-3):
    u = rng.random(w.size)
    u /= np.linalg.norm(u)
    num = (fun(w + eps * u) - fun(w - eps * u)) / (2 * eps)
    return abs(float(grad(w) @ u) - num) <= atol * u.sum() + rtol * abs(num)


def costs(sizes, full_max, make=None):
    print(f"{'n':>8} {'mode':>5} {'status':>7} {'evals':>8} {'wall s':>8}   {'bug: status':>11} {'evals':>6} "
          f"{'found':>7}")
    for n in sizes:
        fun, grad, w = (make or model)(n)
        j = n // 3
        for mode in ("fast", "full"):
            if mode == "full" and n > full_max:
                print(f"{n:>8} {mode:>5} {'(skip)':>7} {2 * n:>8}  (2n: not run, use --full-max)")
                continue
            t = time.perf_counter()
            r = check_gradient(fun, w, grad, mode=mode, vectorized=True)
            dt = time.perf_counter() - t
            if mode == "full" and n > 10_000:
                print(f"{n:>8} {mode:>5} {r.status:>7} {r.n_evals:>8} {dt:>8.2f}   (bug run skipped: same cost)",
                      flush=True)
                continue
            rb = check_gradient(fun, w, wrong(grad, j), mode=mode, vectorized=True)
            found = rb.worst[0].index[0] if rb.worst else None
            print(f"{n:>8} {mode:>5} {r.status:>7} {r.n_evals:>8} {dt:>8.2f}   {rb.status:>11} {rb.n_evals:>6} "
                  f"{str(found == j):>7}", flush=True)


def escapes(trials, n=2000):
    fun, grad, w = model(n, seed=1)
    rng = np.random.default_rng(2024)
    ours = torch = 0
    for t in range(trials):
        j = int(rng.integers(n))
        bad = wrong(grad, j)
        r = check_gradient(fun, w, bad, mode="fast", seed=t)
        ours += r.status != "fail"
        torch += torch_fast_rule(fun, bad, w, rng)
    print(f"one wrong entry (x1.05) in n={n}, {trials} trials: escaped fast mode {ours}/{trials} "
          f"({ours / trials:.1%}); escaped torch's fast-mode rule {torch}/{trials} ({torch / trials:.1%})", flush=True)
    # two equal and opposite errors: the worst case of the 2^-K bound
    from pytest_gradcheck.numerics import fast
    from pytest_gradcheck.numerics.problem import Problem
    scale = Problem(fun, w, grad, "central", None, None, None, 0).L  # the probes' per-entry scales
    miss1 = missK = 0
    for t in range(trials):
        i, k = rng.choice(n, 2, replace=False)
        d = 0.05 * np.abs(grad(w)).max()

        def pair(x, i=i, k=k, d=d):
            g = grad(x)
            g[i] += d / scale[i]
            g[k] -= d / scale[k]
            return g
        miss1 += fast.check_fast(Problem(fun, w, pair, "central", None, None, None, t), n_probes=1).status == "pass"
        missK += check_gradient(fun, w, pair, mode="fast", seed=t).status == "pass"
    print(f"two equal and opposite errors, {trials} trials: escaped 1 probe {miss1}/{trials} ({miss1 / trials:.1%}, "
          f"predicted 50%); escaped K={fast.N_PROBES} probes {missK}/{trials} (predicted {2.0 ** -fast.N_PROBES:.2%})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--full-max", type=int, default=100_000, help="largest n run in full mode")
    args = ap.parse_args()
    sizes = [1000, 10_000] if args.quick else [1000, 10_000, 100_000]
    costs(sizes, args.full_max)
    print("the same with a BLAS-cheap function (so that full mode at n = 1e5 runs in seconds):")
    costs(sizes, args.full_max, make=cheap_model)
    escapes(50 if args.quick else 200)


if __name__ == "__main__":
    main()
