"""The cost users feel in big suites, against its floor (issue 23), side by side in one run.

    python benchmarks/bench_floor.py               # every figure, 3 interleaved rounds (the full OpInfo sweep alone
                                                   # needs more than 3 CPU minutes per dtype and round)
    python benchmarks/bench_floor.py --quick       # 2 rounds, a quarter of the OpInfo ops, a smaller MLP
    python benchmarks/bench_floor.py --rounds 5 --json out.json

Each figure is measured in a fresh child process, the children of one round
one after another and the rounds interleaved, so that load from other jobs on
a shared machine spreads over all figures alike; every figure is printed as
its median with the min-max of the rounds beside it.  Definitions (those of
issue 23):

1. fixed cost of a small check: ``check_gradient(f, x, g, mode="full")`` with
   n = 10, ``f = x @ A @ x``; 20 warm-up calls, then the mean of 200; the
   check's time less its evaluations' time (n_evals x t_f): the checker's own time;
2. torch's OpInfo sweep: every op of ``torch.testing._internal``'s op_db that
   supports float64 gradients on CPU, its first sample, ``L(x) = sum(op(x) * R)``
   (R fixed, random); total time of ``check_gradient(L, x, None, mode="full")``
   over the total of ``torch.autograd.gradcheck`` (slow mode) on the same
   losses, run op by op interleaved, float64 and float32, with the verdicts:
   false failures of each checker (every gradient here is torch's own autograd);
3. fast mode at n = 1e6, ``f = sum(sin(x) * x)``: check time over
   (evaluations x t_f + 2 gradient calls) (bench_scale.m_rss_numpy_fast);
4. full mode on the ~1e4-parameter torch MLP of bench_frameworks.py over the
   bare loop of 2n ``loss(params).item()`` calls with entries set through a
   view, and over torch's slow gradcheck, both warm (bench_scale.m_vs_torch_slow);
5. peak RSS growth: torch full check at n = 1e4 with requires_grad, and numpy
   fast check at n = 1e6 in n-vectors of float64 (bench_scale).

Process CPU time, one thread per library.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import types
import unittest
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

from bench_scale import (CLOCK, ROOT, _time_fun, m_rss_numpy_fast, m_rss_torch_full,  # noqa: E402
                         m_vs_torch_slow)

warnings.filterwarnings("ignore")


def m_fixed_cost(warmup=20, reps=200, n=10):
    """Issue 23's definition: f = x @ A @ x at n = 10, mean of `reps` checks after `warmup`."""
    from pytest_gradcheck import check_gradient
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n))
    x = rng.standard_normal(n)

    def fun(p):
        return p @ A @ p

    def grad(p):
        return (A + A.T) @ p

    for _ in range(warmup):
        r = check_gradient(fun, x, grad, mode="full")
    t0 = CLOCK()
    for _ in range(reps):
        r = check_gradient(fun, x, grad, mode="full")
    t_check = (CLOCK() - t0) / reps
    t_f = _time_fun(fun, x, target=0.1)
    return {"n": n, "status": r.status, "n_evals": r.n_evals, "t_f_us": t_f * 1e6, "check_ms": t_check * 1e3,
            "fixed_ms": (t_check - r.n_evals * t_f) * 1e3}


def _op_db():
    # torch's test helpers import expecttest (a test-only dependency) at import time; only its
    # TestCase base class is touched by what is used here
    stub = types.ModuleType("expecttest")
    stub.TestCase = unittest.TestCase
    sys.modules.setdefault("expecttest", stub)
    from torch.testing._internal.common_methods_invocations import op_db
    return op_db


def opinfo_losses(dtype, every=1):
    """(name, loss, x) for each op with float64 gradients on CPU whose first sample runs: L(x) =
    sum(op(x, *args) * R), R fixed; the other arguments of the sample are constants."""
    import torch
    out = []
    for i, op in enumerate(_op_db()):
        if i % every or not op.supports_autograd or torch.float64 not in op.supported_backward_dtypes("cpu"):
            continue
        if dtype not in op.supported_backward_dtypes("cpu"):
            continue
        try:
            sample = next(iter(op.sample_inputs("cpu", dtype, requires_grad=True)))
            x = sample.input
            if not (isinstance(x, torch.Tensor) and x.dtype == dtype and x.numel() > 0):
                continue
            args = [a.detach() if isinstance(a, torch.Tensor) else a for a in sample.args]
            kwargs = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in sample.kwargs.items()}
            x = x.detach().clone()
            y = op(x, *args, **kwargs)
            if not (isinstance(y, torch.Tensor) and y.dtype == dtype):
                continue
            g = torch.Generator().manual_seed(i)
            R = torch.randn(y.shape, generator=g, dtype=dtype)

            def loss(v, op=op, args=args, kwargs=kwargs, R=R):
                return (op(v, *args, **kwargs) * R).sum()

            xr = x.clone().requires_grad_(True)
            loss(xr).backward()  # differentiable end to end
            if xr.grad is None:
                continue
        except Exception:  # noqa: BLE001  (ops whose sample does not fit this loss are left out)
            continue
        out.append((op.name + ("." + op.variant_test_name if op.variant_test_name else ""), loss, x))
    return out


def m_opinfo(dtype_name, every=1):
    import torch
    from pytest_gradcheck import check_gradient
    torch.set_num_threads(1)
    dtype = getattr(torch, dtype_name)
    losses = opinfo_losses(dtype, every)
    t_ours = t_torch = 0.0
    ours, torch_bad, errors = {"pass": 0, "fail": 0, "inconclusive": 0}, [], []
    ours_bad = []
    for name, loss, x in losses:
        t0 = CLOCK()
        try:
            r = check_gradient(loss, x, None, mode="full")
            status = r.status
        except Exception as e:  # noqa: BLE001
            status = "error"
            errors.append(f"{name}: {type(e).__name__}")
        t_ours += CLOCK() - t0
        ours[status] = ours.get(status, 0) + 1
        if status == "fail":
            ours_bad.append(name)
        xr = x.clone().requires_grad_(True)
        t0 = CLOCK()
        try:
            ok = torch.autograd.gradcheck(loss, (xr,), raise_exception=False)
        except Exception:  # noqa: BLE001  (torch raises on some inputs instead of returning False)
            ok = False
        t_torch += CLOCK() - t0
        if not ok:
            torch_bad.append(name)
    return {"dtype": dtype_name, "ops": len(losses), "ours_s": t_ours, "torch_s": t_torch,
            "ratio": t_ours / t_torch, "ours": ours, "ours_false_failures": ours_bad,
            "torch_false_failures": torch_bad, "ours_errors": errors}


MEASUREMENTS = {
    "fixed_cost": lambda a: m_fixed_cost(),
    "opinfo_float64": lambda a: m_opinfo("float64", 4 if a.quick else 1),
    "opinfo_float32": lambda a: m_opinfo("float32", 4 if a.quick else 1),
    "rss_numpy_fast": lambda a: m_rss_numpy_fast(a.n_fast),
    "vs_torch_slow": lambda a: m_vs_torch_slow(a.quick),
    "rss_torch_full": lambda a: m_rss_torch_full(a.n_torch),
}


def run_child(name, args):
    cmd = [sys.executable, __file__, "--child", name, "--n-torch", str(args.n_torch), "--n-fast", str(args.n_fast)]
    if args.quick:
        cmd.append("--quick")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["exit %d" % out.returncode])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(rounds, key, fmt):
    vals = [r[key] for r in rounds if "error" not in r]
    if not vals:
        return "error: " + rounds[0]["error"]
    if len(vals) == 1:
        return fmt % vals[0]
    return (fmt % statistics.median(vals)) + f"  ({fmt % min(vals)}-{fmt % max(vals)})".replace(" ", "")


def report(res, args):
    print(f"# bench_floor: python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; {args.rounds} interleaved rounds, median (min-max); "
          f"process CPU time, one thread{' (quick)' if args.quick else ''}\n")
    rows = []

    def row(name, key, fmt, label, target, note=lambda r: ""):
        rs = res.get(name)
        if rs is None:
            return
        ok = [r for r in rs if "error" not in r]
        rows.append((label, spread(rs, key, fmt), target, note(ok[-1]) if ok else ""))

    row("fixed_cost", "fixed_ms", "%.3f", "fixed cost, n=10, f = x@A@x (ms)", "<= 0.5",
        lambda r: f"{r['n_evals']} evals x {r['t_f_us']:.1f} us; check {r['check_ms']:.3f} ms, {r['status']}")
    for dt in ("float64", "float32"):
        row("opinfo_" + dt, "ratio", "%.2f", f"OpInfo sweep {dt}: ours / torch slow (x)", "<= 1",
            lambda r: f"{r['ops']} ops, {r['ours_s']:.1f} s vs {r['torch_s']:.1f} s; false failures: ours "
            f"{len(r['ours_false_failures'])}, torch {len(r['torch_false_failures'])}; ours {r['ours']}")
    row("rss_numpy_fast", "over_floor", "%.2f", "fast n=1e6 sum(sin(x)x): / (evals t_f + 2 t_g) (x)", "<= 3",
        lambda r: f"{r['n_evals']} evals x {r['t_f_s'] * 1e3:.2f} ms + 2 x {r['t_grad_s'] * 1e3:.2f} ms; "
        f"check {r['t_check_s']:.2f} s")
    row("vs_torch_slow", "ours_over_bare", "%.3f", "full, torch MLP: / bare loop of 2n loss calls (x)", "<= 1.05",
        lambda r: f"n = {r['n']}, ours {r['ours_s']:.2f} s, bare {r['bare_loop_s']:.2f} s, {r['status']}")
    row("vs_torch_slow", "ratio", "%.2f", "full, torch MLP: / torch slow gradcheck (x)", "<= 1",
        lambda r: f"torch {r['torch_s']:.2f} s; bare / torch {r['floor_ratio']:.2f}")
    row("rss_torch_full", "peak_growth_MiB", "%.1f", "peak RSS, torch full n=1e4 requires_grad (MiB)", "<= 128",
        lambda r: f"{r['n_evals']} evals, {r['status']}")
    row("rss_numpy_fast", "n_vectors", "%.1f", "peak RSS, numpy fast n=1e6 (n-vectors)", "<= 12",
        lambda r: f"{r['peak_growth_MiB']:.0f} MiB")
    w = max(len(r[0]) for r in rows)
    v = max(len(r[1]) for r in rows)
    for label, value, target, note in rows:
        print(f"{label:<{w}}  {value:>{v}}  {target:<8} {note}")
    for dt in ("float64", "float32"):
        for r in res.get("opinfo_" + dt, [])[:1]:
            if "error" not in r:
                print(f"\nOpInfo {dt}, first round: ours failed {r['ours_false_failures'] or 'none'}; errors "
                      f"{r['ours_errors'] or 'none'}; torch failed {len(r['torch_false_failures'])}: "
                      f"{', '.join(r['torch_false_failures'][:40])}{' ...' if len(r['torch_false_failures']) > 40 else ''}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 rounds, every 4th op, a smaller MLP, fast n = 1e5")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; 2 quick)")
    ap.add_argument("--json", metavar="PATH", help="also write every round's numbers as JSON")
    ap.add_argument("--only", metavar="NAME", action="append", choices=sorted(MEASUREMENTS),
                    help="run only this measurement (repeatable)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--n-torch", type=int, default=10_000, help="n of the torch full check (default 1e4)")
    ap.add_argument("--n-fast", type=int, default=None, help="n of the numpy fast check (default 1e6; 1e5 quick)")
    args = ap.parse_args(argv)
    if args.n_fast is None:
        args.n_fast = 100_000 if args.quick else 1_000_000
    if args.rounds is None:
        args.rounds = 2 if args.quick else 3
    if args.child:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        print(json.dumps(MEASUREMENTS[args.child](args)))
        return
    names = args.only or list(MEASUREMENTS)
    res = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            res[name].append(run_child(name, args))
    report(res, args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
