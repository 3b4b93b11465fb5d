"""How the checker's cost grows with n: memory, evaluations, time over its floor.

    python benchmarks/bench_scale.py            # everything (a few minutes on 2 cores)
    python benchmarks/bench_scale.py --quick    # smaller n where a number does not need the full size
    python benchmarks/bench_scale.py --json out.json

Each memory figure comes from a fresh child process (peak RSS is a high-water
mark: one process per measurement keeps them apart).  Printed side by side,
with the target of issue 14 next to each:

1. peak RSS growth of a full check with torch at n = 1e4, params with
   requires_grad (target <= 128 MiB);
2. peak RSS growth of a fast check with numpy at n = 1e6, in MiB and in
   n-vectors of float64 (target <= 12 n-vectors);
3. fast mode's time over its evaluation floor at n = 1e6: check time /
   (evaluations x t_f + 2 gradient calls) (target <= 3x);
4. full mode's evaluations per entry on an MLP and a logistic regression with
   ~1e4 parameters (target <= 2.15 n);
5. full mode over torch.autograd.gradcheck (slow) on the ~1e4-parameter MLP
   of bench_frameworks.py, grad=None, both warm, best of 3 interleaved rounds
   (target <= 0.5x), beside the floor of any central-difference check: a bare
   loop of 2n loss calls over torch's time;
6. the fixed cost of one check at n = 10 over its evaluations (target <= 0.5 ms).
7. beside the targets, a jitted jax function at n = 1e3, 1e4, 3e4: a full
   check's time over 2n plain jitted calls and its peak RSS growth (batching,
   an XLA compile, is tried only where plain calls would cost more than it);
8. full mode's evaluations per entry when the candidates' two first steps go
   in a fixed order or in the order each leaf learns (entries._FirstOrder).

Times are process CPU time with one thread per library.  Nothing is asserted;
the numbers are the result.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
warnings.filterwarnings("ignore")

from corpus.scale import heavy_tailed_logreg, tanh_mlp  # noqa: E402  (one definition for the benchmark and tests)

CLOCK = time.process_time
MiB = 2.0 ** 20


def _rss_now() -> float:
    """Resident set size now, in bytes (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0  # kB on Linux


def _time_fun(f, x, target=0.2):
    f(x)
    reps, t = 1, 0.0
    while True:
        t0 = CLOCK()
        for _ in range(reps):
            f(x)
        t = CLOCK() - t0
        if t >= target:
            return t / reps
        reps *= 2


# --------------------------------------------------------------- problems


def sin_problem(n, seed=0):
    x = np.random.default_rng(seed).uniform(-2, 2, size=n)
    return (lambda p: float(np.sum(np.sin(p) * p))), (lambda p: np.cos(p) * p + np.sin(p)), x


# --------------------------------------------------------------- measurements (each in its own child)


def m_rss_torch_full(n):
    import torch
    from pytest_gradcheck import check_gradient
    torch.set_num_threads(1)
    x = torch.linspace(-2, 2, n, dtype=torch.float64).requires_grad_(True)

    def fun(p):
        return (torch.sin(p) * p).sum()

    def grad(p):
        with torch.no_grad():
            return torch.cos(p) * p + torch.sin(p)

    fun(x), grad(x)  # torch's own one-off allocations are not the checker's
    base = max(_rss_now(), _peak_rss())
    r = check_gradient(fun, x, grad, mode="full")
    return {"n": n, "status": r.status, "n_evals": r.n_evals, "peak_growth_MiB": (_peak_rss() - base) / MiB}


def m_rss_numpy_fast(n):
    from pytest_gradcheck import check_gradient
    fun, grad, x = sin_problem(n)
    fun(x), grad(x)
    base = max(_rss_now(), _peak_rss())
    t0 = CLOCK()
    r = check_gradient(fun, x, grad, mode="fast")
    t_check = CLOCK() - t0
    growth = _peak_rss() - base
    t_f = _time_fun(fun, x)
    t_g = _time_fun(grad, x)
    floor = r.n_evals * t_f + 2 * t_g
    return {"n": n, "status": r.status, "n_evals": r.n_evals, "peak_growth_MiB": growth / MiB,
            "n_vectors": growth / (8.0 * n), "t_check_s": t_check, "t_f_s": t_f, "t_grad_s": t_g,
            "over_floor": t_check / floor}


def m_jax_full(n):
    """A jitted jax fun, full mode: peak RSS growth (streaming) and time over 2n plain jitted calls
    (whether the batched-or-plain trial picked the cheaper way)."""
    import jax
    import jax.numpy as jnp
    from pytest_gradcheck import check_gradient
    jax.config.update("jax_enable_x64", True)
    x = jnp.linspace(-2.0, 2.0, n)
    fun = jax.jit(lambda p: jnp.sum(jnp.sin(p) * p))
    grad = jax.jit(lambda p: jnp.cos(p) * p + jnp.sin(p))
    fun(x).block_until_ready(), grad(x).block_until_ready()
    base = max(_rss_now(), _peak_rss())
    t0 = CLOCK()
    r = check_gradient(fun, x, grad, mode="full")
    t_check = CLOCK() - t0
    growth = _peak_rss() - base
    xs = np.asarray(x)
    t_f = _time_fun(lambda v: float(fun(v)), xs)  # a numpy point in, a float out: what a plain call is
    return {"n": n, "status": r.status, "n_evals": r.n_evals, "peak_growth_MiB": growth / MiB,
            "t_check_s": t_check, "t_f_s": t_f, "over_plain": t_check / (2 * n * t_f)}


def m_evals_per_entry(which):
    from pytest_gradcheck import check_gradient
    fun, grad, p = tanh_mlp() if which == "mlp" else heavy_tailed_logreg()
    r = check_gradient(fun, p, grad, mode="full")
    return {"problem": which, "n": r.n_params, "status": r.status, "n_evals": r.n_evals,
            "per_entry": r.n_evals / r.n_params}


def m_vs_torch_slow(quick, rounds=3):
    """Full mode against torch's slow gradcheck on the same loss, both warm: rounds interleaved,
    best of each.  (A first, cold call of torch's gradcheck is ~30% slower than its later ones;
    timed cold it flattered the ratio: 0.47x cold against 0.59x warm on 2026-12-01.)  Also the
    floor of any central-difference check: 2n calls of the loss in a bare loop."""
    import torch
    from bench_frameworks import torch_mlp
    from pytest_gradcheck import check_gradient
    torch.set_num_threads(1)
    params, loss, names = torch_mlp(quick)
    n = sum(int(t.numel()) for t in params.values())

    def as_fn(*ts):
        return loss(dict(zip(names, ts)))

    leaves = tuple(params[k].clone().requires_grad_(True) for k in names)
    rg = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    flats = [params[k].view(-1) for k in names]

    def bare_loop():  # the loop a hand-written central-difference check runs: 2n loss calls
        for flat in flats:
            for j in range(flat.numel()):
                old = flat[j].item()
                flat[j] = old + 1e-6
                loss(params).item()
                flat[j] = old - 1e-6
                loss(params).item()
                flat[j] = old

    runs = {"torch": lambda: torch.autograd.gradcheck(as_fn, leaves),
            "ours": lambda: check_gradient(loss, params, None, mode="full"),
            "ours_rg": lambda: check_gradient(loss, rg, None, mode="full"),
            "bare": bare_loop}
    first, best, out = {}, {}, {}
    for r in range(rounds + 1):  # round 0 is the cold one: reported, not used
        for name, run in runs.items():
            t0 = CLOCK()
            out[name] = run()
            t = CLOCK() - t0
            if r == 0:
                first[name] = t
            else:
                best[name] = min(best.get(name, t), t)
    return {"n": n, "torch_ok": bool(out["torch"]), "status": out["ours"].status, "n_evals": out["ours"].n_evals,
            "torch_s": best["torch"], "ours_s": best["ours"], "ratio": best["ours"] / best["torch"],
            "ours_requires_grad_s": best["ours_rg"], "ratio_requires_grad": best["ours_rg"] / best["torch"],
            "bare_loop_s": best["bare"], "floor_ratio": best["bare"] / best["torch"],
            "ours_over_bare": best["ours"] / best["bare"], "cold_ratio": first["ours"] / first["torch"]}


def m_first_step_orders():
    """Full-mode evaluations per entry when every candidate (an entry whose first step roundoff
    would swamp) tries its grown step first, its small step first, or the order each leaf learns
    (entries._FirstOrder, the default), on functions where different orders win."""
    from bench_fast import model as logcosh_model
    from corpus.scale import tanh_mlp

    from pytest_gradcheck import check_gradient
    from pytest_gradcheck.numerics import entries

    x = np.linspace(-2, 2, 10_000)
    cases = {
        "tanh MLP": tanh_mlp,
        "heavy-tailed logreg": heavy_tailed_logreg,
        "sum log cosh(c (w - t))": lambda: logcosh_model(10_000),
        "sum sin(x) x": lambda: (lambda p: float(np.sum(np.sin(p) * p)), lambda p: np.cos(p) * p + np.sin(p), x),
        "sum log cosh(10 x)": lambda: (lambda p: float(np.sum(np.log(np.cosh(10 * p)))),
                                       lambda p: 10 * np.tanh(10 * p), x),
        "sum exp(2 x)": lambda: (lambda p: float(np.sum(np.exp(2 * p))), lambda p: 2 * np.exp(2 * p), x),
        "sum x^4": lambda: (lambda p: float(np.sum(p ** 4)), lambda p: 4 * p ** 3, x),
    }
    learned_init, learned_record = entries._FirstOrder.__init__, entries._FirstOrder.record
    rows = {}
    try:
        for name, make in cases.items():
            fun, grad, p = make()
            row = {}
            for label, order in (("grown_first", True), ("small_first", False), ("learned", None)):
                if order is None:
                    entries._FirstOrder.__init__, entries._FirstOrder.record = learned_init, learned_record
                else:
                    entries._FirstOrder.__init__ = lambda self, o=order: setattr(self, "grown_first", o)
                    entries._FirstOrder.record = lambda self, *a, o=order: setattr(self, "grown_first", o)
                r = check_gradient(fun, p, grad, mode="full")
                row[label] = r.n_evals / r.n_params
            row["status"] = r.status
            rows[name] = row
    finally:
        entries._FirstOrder.__init__, entries._FirstOrder.record = learned_init, learned_record
    return rows


def m_fixed_cost(rounds):
    from pytest_gradcheck import check_gradient
    fun, grad, x = sin_problem(10)
    t_f = _time_fun(fun, x, target=0.1)
    best, r = float("inf"), None
    for _ in range(rounds):
        t0 = CLOCK()
        r = check_gradient(fun, x, grad, mode="full")
        best = min(best, CLOCK() - t0)
    return {"n": 10, "n_evals": r.n_evals, "t_f_us": t_f * 1e6, "check_ms": best * 1e3,
            "fixed_ms": (best - r.n_evals * t_f) * 1e3}


MEASUREMENTS = {
    "rss_torch_full": lambda a: m_rss_torch_full(a.n_torch),
    "rss_numpy_fast": lambda a: m_rss_numpy_fast(a.n_fast),
    # one child per size: peak RSS is a high-water mark
    "jax_full_1e3": lambda a: m_jax_full(1_000),
    "jax_full_1e4": lambda a: m_jax_full(3_000 if a.quick else 10_000),
    "jax_full_3e4": lambda a: m_jax_full(5_000 if a.quick else 30_000),
    "evals_mlp": lambda a: m_evals_per_entry("mlp"),
    "evals_logreg": lambda a: m_evals_per_entry("logreg"),
    "vs_torch_slow": lambda a: m_vs_torch_slow(a.quick),
    "fixed_cost": lambda a: m_fixed_cost(30 if a.quick else 200),
    "first_step_orders": lambda a: m_first_step_orders(),
}


def run_child(name, args):
    cmd = [sys.executable, __file__, "--child", name, "--n-torch", str(args.n_torch), "--n-fast", str(args.n_fast)]
    if args.quick:
        cmd.append("--quick")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")]))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["exit %d" % out.returncode])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n = 1e5 for the fast check, a smaller torch MLP")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    ap.add_argument("--only", metavar="NAME", action="append", choices=sorted(MEASUREMENTS),
                    help="run only this measurement (repeatable)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--n-torch", type=int, default=10_000, help="n of the torch full check (default 1e4)")
    ap.add_argument("--n-fast", type=int, default=None, help="n of the numpy fast check (default 1e6; 1e5 quick)")
    args = ap.parse_args(argv)
    if args.n_fast is None:
        args.n_fast = 100_000 if args.quick else 1_000_000
    if args.child:
        print(json.dumps(MEASUREMENTS[args.child](args)))
        return
    names = args.only or list(MEASUREMENTS)
    res = {name: run_child(name, args) for name in names}

    def show(name, text):
        r = res.get(name)
        if r is None:
            return
        print(text(r) if "error" not in r else f"{name}: error: {r['error']}")

    print(f"# bench_scale: python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs"
          f"{' (quick)' if args.quick else ''}; process CPU time, one thread\n")
    print(f"{'measure':<52} {'value':>14}  target")
    show("rss_torch_full", lambda r: f"{'peak RSS growth, torch full, n=%d (requires_grad)' % r['n']:<52} "
         f"{r['peak_growth_MiB']:>10.1f} MiB  <= 128 MiB   ({r['status']}, {r['n_evals']} evals)")
    show("rss_numpy_fast", lambda r: f"{'peak RSS growth, numpy fast, n=%d' % r['n']:<52} "
         f"{r['n_vectors']:>7.1f} n-vec  <= 12 n-vectors ({r['peak_growth_MiB']:.0f} MiB, {r['status']})")
    show("rss_numpy_fast", lambda r: f"{'fast check time / evaluation floor, n=%d' % r['n']:<52} "
         f"{r['over_floor']:>12.2f} x  <= 3x   ({r['n_evals']} evals x {r['t_f_s'] * 1e3:.2f} ms"
         f" + 2 grads x {r['t_grad_s'] * 1e3:.2f} ms; check {r['t_check_s']:.2f} s)")
    for key in ("jax_full_1e3", "jax_full_1e4", "jax_full_3e4"):
        show(key, lambda r: f"{'jax (jit) full, n=%d: time / 2n plain calls, RSS' % r['n']:<52} "
             f"{r['over_plain']:>12.2f} x  {r['peak_growth_MiB']:.1f} MiB (no target; f {r['t_f_s'] * 1e6:.0f} us, "
             f"check {r['t_check_s']:.2f} s, {r['status']})")
    for key, label in (("evals_mlp", "MLP"), ("evals_logreg", "logistic regression")):
        show(key, lambda r, label=label: f"{'full-mode evaluations per entry, %s n=%d' % (label, r['n']):<52} "
             f"{r['per_entry']:>12.3f} n  <= 2.15 n ({r['n_evals']} evals, {r['status']})")
    show("vs_torch_slow", lambda r: f"{'full mode / torch gradcheck slow, MLP n=%d' % r['n']:<52} "
         f"{r['ratio']:>12.2f} x  <= 0.5x  ({r['ours_s']:.2f} s vs {r['torch_s']:.2f} s)")
    show("vs_torch_slow", lambda r: f"{'  the same, params with requires_grad':<52} "
         f"{r['ratio_requires_grad']:>12.2f} x  <= 0.5x  ({r['ours_requires_grad_s']:.2f} s)")
    show("vs_torch_slow", lambda r: f"{'  floor: 2n bare loss calls / torch slow':<52} "
         f"{r['floor_ratio']:>12.2f} x  (ours / bare loop {r['ours_over_bare']:.2f}x; cold first runs "
         f"{r['cold_ratio']:.2f}x)")
    show("fixed_cost", lambda r: f"{'fixed cost per check, n=10 (t_f %.1f us)' % r['t_f_us']:<52} "
         f"{r['fixed_ms']:>11.2f} ms  <= 0.5 ms ({r['n_evals']} evals, check {r['check_ms']:.2f} ms)")
    show("first_step_orders", lambda r: "\nfull-mode evaluations per entry by the order of a candidate's two first "
         "steps (n = 1e4; 1-D sums over x in [-2, 2])\n" + f"{'f':<26} {'grown first':>12} {'small first':>12} "
         f"{'learned':>9}\n" + "\n".join(f"{k:<26} {v['grown_first']:>12.3f} {v['small_first']:>12.3f} "
                                         f"{v['learned']:>9.3f}  ({v['status']})" for k, v in r.items()))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
