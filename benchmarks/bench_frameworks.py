"""pytest-gradcheck vs torch.autograd.gradcheck and jax.test_util.check_grads, side by side.

    python benchmarks/bench_frameworks.py            # everything (about a minute on 2 cores)
    python benchmarks/bench_frameworks.py --quick    # smaller MLP
    python benchmarks/bench_frameworks.py --json out.json

Part 1 (speed): the loss of a float64 MLP with ~10^4 parameters, checked by
  torch gradcheck (slow and fast_mode), jax check_grads (order 1, reverse mode),
  and check_gradient (full: every entry; fast: random probes), grad=None
  (autograd / jax.grad).  Wall time, evaluations of the function, and the ratio
  to torch's slow mode (full) or fast mode (fast).  Then full mode against
  torch's slow mode on the same MLP with batches of 4, 32 and 128 (the
  function's own cost against the checkers' per-evaluation overhead), and the
  fast modes on MLPs of 4, 8 and 12 tensors.
Part 2 (bugs): a linear layer written as a custom torch.autograd.Function and as
  a jax.custom_vjp, with wrong backward rules injected; which checkers catch them.
  The same buggy rules are given to every checker at its defaults.
Nothing is asserted here; the numbers are the result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# one thread per framework: stable timings on a shared machine, and every checker gets the same
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import torch  # noqa: E402

from pytest_gradcheck import check_gradient  # noqa: E402
from pytest_gradcheck.torch_function import check_function  # noqa: E402

torch.set_num_threads(1)  # stable timings on a shared machine; both sides get the same
warnings.filterwarnings("ignore")


#: CPU seconds of each timed call (the process's CPU clock is robust to other load on the machine;
#: with one thread per framework it equals the wall time on an idle machine)
CPU: dict = {}


def timed(fn, repeat=1):
    """Best wall time of ``repeat`` runs (its CPU time is kept in CPU[id(result)]) and the last result."""
    best, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    timed.last_cpu = best_cpu
    return best, out


class Counter:
    def __init__(self, f):
        self.f, self.n = f, 0

    def __call__(self, *a, **k):
        self.n += 1
        return self.f(*a, **k)


# ---------------------------------------------------------------------------
# Part 1: speed on an MLP loss
MLP_BATCH = 32


def mlp_sizes(quick):
    return (20, 60, 5, 16) if quick else (50, 150, 10, MLP_BATCH)  # in, hidden, out, batch


def torch_mlp(quick, batch=None):
    """(params, loss, leaf names) of the float64 one-hidden-layer MLP cross-entropy loss."""
    d_in, d_h, d_out, default_batch = mlp_sizes(quick)
    batch = batch or default_batch
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, d_in, generator=g, dtype=torch.float64)
    y = torch.randint(0, d_out, (batch,), generator=g)
    names = ["W1", "b1", "W2", "b2"]
    shapes = [(d_in, d_h), (d_h,), (d_h, d_out), (d_out,)]
    params = {n: 0.3 * torch.randn(*s, generator=g, dtype=torch.float64) for n, s in zip(names, shapes)}

    def loss(p):
        h = torch.tanh(x @ p["W1"] + p["b1"])
        return torch.nn.functional.cross_entropy(h @ p["W2"] + p["b2"], y)

    return params, loss, names


def bench_torch_mlp(quick, has_fast):
    params, loss, names = torch_mlp(quick)
    n = sum(p.numel() for p in params.values())
    rows = []
    leaves = tuple(params[k].clone().requires_grad_(True) for k in names)
    f_t = Counter(lambda *ls: loss(dict(zip(names, ls))))
    t, ok = timed(lambda: torch.autograd.gradcheck(f_t, leaves), repeat=2)
    rows.append(("torch gradcheck (slow)", t, timed.last_cpu, f_t.n // 2, ok))
    f_t.n = 0
    t, ok = timed(lambda: torch.autograd.gradcheck(f_t, leaves, fast_mode=True), repeat=3)
    rows.append(("torch gradcheck fast_mode", t, timed.last_cpu, f_t.n // 3, ok))

    f_c = Counter(loss)
    t, r = timed(lambda: check_gradient(f_c, params, mode="full"), repeat=2)
    rows.append(("check_gradient full", t, timed.last_cpu, r.n_evals, r.passed))
    t, r = timed(lambda: check_gradient(f_c, params, mode="full", vectorized=False), repeat=2)
    rows.append(("check_gradient full (vectorized=False)", t, timed.last_cpu, r.n_evals, r.passed))
    if n >= 4096:  # the adapter does not vmap this large a problem by default; show what vmap would cost
        t, r = timed(lambda: _forced_vmap(loss, params), repeat=2)
        rows.append(("check_gradient full (forced torch.func.vmap)", t, timed.last_cpu, r.n_evals, r.passed))
    if has_fast:
        t, r = timed(lambda: check_gradient(f_c, params, mode="fast"), repeat=3)
        rows.append(("check_gradient fast", t, timed.last_cpu, r.n_evals, r.passed))
    return n, rows


FULL_BY_COST_BATCHES = (4, 32, 128)


def bench_full_by_cost(batches=FULL_BY_COST_BATCHES, quick=False):
    """Full mode vs torch's slow mode on the same 9,160-parameter MLP with batches of 4, 32 and 128
    examples: the function's own cost grows ~8x while the checkers' per-evaluation overhead stays.

    Both checkers evaluate every entry twice (central differences), so the ratio of wall times is
    about (our time per evaluation) / (torch's), and ours is little more than the function itself:
    the ratio falls below 0.5 where torch's per-evaluation overhead exceeds the function's cost and
    tends to ~0.8 (f without autograd vs f recording a graph) where the function dominates."""
    out = []
    for batch in batches:
        params, loss, names = torch_mlp(quick, batch)
        with torch.no_grad():
            t_f = min(timed(lambda: loss(params))[0] for _ in range(200))
        leaves = tuple(params[k].clone().requires_grad_(True) for k in names)
        f_t = Counter(lambda *ls, loss=loss: loss(dict(zip(names, ls))))
        t_torch = t_ours = float("inf")
        for _ in range(2):  # alternating, best of two each: a slow spell of the machine hits both alike
            f_t.n = 0
            t_torch = min(t_torch, timed(lambda: torch.autograd.gradcheck(f_t, leaves))[0])
            t, r = timed(lambda: check_gradient(loss, params, mode="full"))
            t_ours = min(t_ours, t)
        out.append({"batch": batch, "n": sum(v.numel() for v in params.values()), "f_us": 1e6 * t_f,
                    "torch_s": t_torch, "torch_evals": f_t.n, "ours_s": t_ours, "ours_evals": r.n_evals,
                    "passed": r.passed})
    return out


def print_full_by_cost(rows):
    print("\n== full mode vs torch slow gradcheck by the function's own cost (same MLP, batch varies) ==")
    print(f"{'batch':>5s} {'n':>6s} {'f us':>7s} {'torch s':>8s} {'evals':>6s} {'us/eval':>8s} "
          f"{'ours s':>7s} {'evals':>6s} {'us/eval':>8s}  ratio")
    for r in rows:
        print(f"{r['batch']:>5d} {r['n']:>6d} {r['f_us']:7.1f} {r['torch_s']:8.2f} {r['torch_evals']:>6d} "
              f"{1e6 * r['torch_s'] / r['torch_evals']:8.1f} {r['ours_s']:7.2f} {r['ours_evals']:>6d} "
              f"{1e6 * r['ours_s'] / r['ours_evals']:8.1f}  {r['ours_s'] / r['torch_s']:.2f}"
              f"{'' if r['passed'] else '  (ours FAILED a correct gradient)'}")


FAST_DEPTHS = {1: (50, 150, 10), 3: (50, 64, 64, 64, 10), 5: (50, 40, 40, 40, 40, 40, 10)}


def bench_fast_by_depth(rounds=8):
    """Fast modes side by side on MLPs of ~10^4 parameters with 1, 3 and 5 hidden layers.

    torch's fast_mode spends 2 evaluations per input tensor (4, 8, 12 tensors here) plus a
    backward; ours spends 2 per probe (10 by default, 2^-10 escape bound) whatever the number of
    tensors.  The timings alternate between the checkers (rounds of 5 calls each) and the best
    call of each is kept, so a slow spell of the shared machine hits both alike."""
    out = []
    for depth, sizes in FAST_DEPTHS.items():
        g = torch.Generator().manual_seed(depth)
        x = torch.randn(MLP_BATCH, sizes[0], generator=g, dtype=torch.float64)
        y = torch.randint(0, sizes[-1], (MLP_BATCH,), generator=g)
        params = {}
        for i in range(len(sizes) - 1):
            params[f"W{i}"] = torch.randn(sizes[i], sizes[i + 1], generator=g, dtype=torch.float64) / sizes[i] ** 0.5
            params[f"b{i}"] = 0.1 * torch.randn(sizes[i + 1], generator=g, dtype=torch.float64)
        names, nl = list(params), len(sizes) - 1

        def loss(p, x=x, y=y, nl=nl):
            h = x
            for i in range(nl):
                h = h @ p[f"W{i}"] + p[f"b{i}"]
                h = torch.tanh(h) if i < nl - 1 else h
            return torch.nn.functional.cross_entropy(h, y)

        leaves = tuple(params[k].clone().requires_grad_(True) for k in names)
        f_t = Counter(lambda *ls, loss=loss, names=names: loss(dict(zip(names, ls))))
        runs = {"torch fast_mode": lambda: torch.autograd.gradcheck(f_t, leaves, fast_mode=True),
                "ours fast (10 probes)": lambda: check_gradient(loss, params, mode="fast"),
                "ours fast (n_probes=4)": lambda: check_gradient(loss, params, mode="fast", n_probes=4)}
        best = {k: float("inf") for k in runs}
        results = {}
        for _ in range(rounds):
            for k, fn in runs.items():
                for _ in range(5):
                    t = time.perf_counter()
                    results[k] = fn()
                    best[k] = min(best[k], time.perf_counter() - t)
        f_t.n = 0
        torch.autograd.gradcheck(f_t, leaves, fast_mode=True)
        n = sum(v.numel() for v in params.values())
        evals = {"torch fast_mode": f_t.n, "ours fast (10 probes)": results["ours fast (10 probes)"].n_evals,
                 "ours fast (n_probes=4)": results["ours fast (n_probes=4)"].n_evals}
        out.append({"hidden_layers": depth, "n": n, "tensors": len(names), "best_s": best, "evals": evals})
    return out


def print_fast_by_depth(rows):
    print("\n== fast modes on float64 MLPs of ~10^4 parameters: best wall time of 40 calls, alternating ==")
    print(f"{'hidden layers':>13s} {'n':>6s} {'tensors':>7s}  {'checker':24s} {'ms':>7s} {'f evals':>8s}  ratio to torch")
    for r in rows:
        ref = r["best_s"]["torch fast_mode"]
        for k, t in r["best_s"].items():
            print(f"{r['hidden_layers']:>13d} {r['n']:>6d} {r['tensors']:>7d}  {k:24s} {1e3 * t:7.2f} "
                  f"{r['evals'][k]:>8d}  {t / ref:.2f}")


def _forced_vmap(loss, params):
    from pytest_gradcheck.frameworks import base, torch_adapter

    old = torch_adapter.MAX_BATCH_PARAMS, base.PROBE_ROWS
    torch_adapter.MAX_BATCH_PARAMS, base.PROBE_ROWS = 10**12, 10**12
    try:
        return check_gradient(loss, params, mode="full")
    finally:
        torch_adapter.MAX_BATCH_PARAMS, base.PROBE_ROWS = old


def bench_jax_mlp(quick, has_fast):
    try:
        import jax
        import jax.numpy as jnp
        from jax.test_util import check_grads
    except ImportError:
        return None, []
    d_in, d_h, d_out, batch = mlp_sizes(quick)
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.standard_normal((batch, d_in)))
        y = jax.nn.one_hot(rng.integers(0, d_out, batch), d_out, dtype=jnp.float64)
        params = {"W1": jnp.asarray(0.3 * rng.standard_normal((d_in, d_h))), "b1": jnp.asarray(0.3 * rng.standard_normal(d_h)),
                  "W2": jnp.asarray(0.3 * rng.standard_normal((d_h, d_out))), "b2": jnp.asarray(0.3 * rng.standard_normal(d_out))}

        @jax.jit
        def loss(p):
            h = jnp.tanh(x @ p["W1"] + p["b1"])
            return -jnp.mean(jnp.sum(jax.nn.log_softmax(h @ p["W2"] + p["b2"]) * y, axis=-1))

        loss(params).block_until_ready()
        jax.grad(loss)(params)
        n = sum(v.size for v in params.values())
        rows = []
        t, _ = timed(lambda: check_grads(loss, (params,), order=1, modes=("rev",)), repeat=3)
        rows.append(("jax check_grads (order 1, rev)", t, timed.last_cpu, None, True))
        t, r = timed(lambda: check_gradient(loss, params, mode="full"))
        rows.append(("check_gradient full (jit+vmap, incl. compile)", t, timed.last_cpu, r.n_evals, r.passed))
        t, r = timed(lambda: check_gradient(loss, params, mode="full"))
        rows.append(("check_gradient full (jit+vmap, compiled)", t, timed.last_cpu, r.n_evals, r.passed))
        t, r = timed(lambda: check_gradient(loss, params, mode="full", vectorized=False))
        rows.append(("check_gradient full (vectorized=False)", t, timed.last_cpu, r.n_evals, r.passed))
        if has_fast:
            t, r = timed(lambda: check_gradient(loss, params, mode="fast"), repeat=3)
            rows.append(("check_gradient fast", t, timed.last_cpu, r.n_evals, r.passed))
    return n, rows


# ---------------------------------------------------------------------------
# Part 2: injected bugs in a custom linear layer, y = s * (x W^T + b)
def make_torch_fn(name, grads, scale=1.0):
    """A Linear autograd.Function whose backward is ``grads(g, x, W) -> (gx, gW, gb)``."""

    def forward(ctx, x, W, b):
        ctx.save_for_backward(x, W)
        return scale * (x @ W.T + b)

    def backward(ctx, g):
        x, W = ctx.saved_tensors
        return grads(g * scale, x, W)

    return type(name, (torch.autograd.Function,), {"forward": staticmethod(forward), "backward": staticmethod(backward)})


def correct(g, x, W):
    return g @ W, g.T @ x, g.sum(0)


def one_entry(g, x, W):
    gx, gW, gb = correct(g, x, W)
    gW = gW.clone()
    gW[2, 3] *= 1.01  # 1% wrong in one entry of one leaf
    return gx, gW, gb


BUGS = {
    "correct": (correct, 1.0),
    "sign of dW": (lambda g, x, W: (g @ W, -(g.T @ x), g.sum(0)), 1.0),
    "missing factor 2 in dx": (lambda g, x, W: (0.5 * g @ W, g.T @ x, g.sum(0)), 1.0),
    "None for db": (lambda g, x, W: (g @ W, g.T @ x, None), 1.0),
    "dx with columns reversed": (lambda g, x, W: ((g @ W).flip(1), g.T @ x, g.sum(0)), 1.0),
    "one entry of dW 1% off": (one_entry, 1.0),
    "dW 1e-4 relative error": (lambda g, x, W: (g @ W, (1 + 1e-4) * (g.T @ x), g.sum(0)), 1.0),
    "sign of dW, small scale (1e-7)": (lambda g, x, W: (g @ W, -(g.T @ x), g.sum(0)), 1e-7),
}


def jax_bug_rules():
    import jax.numpy as jnp

    def flip(a):
        return a[:, ::-1]

    def one(g, x, W):
        gx, gW, gb = g @ W, g.T @ x, g.sum(0)
        return gx, gW.at[2, 3].multiply(1.01), gb

    return {
        "correct": (lambda g, x, W: (g @ W, g.T @ x, g.sum(0)), 1.0),
        "sign of dW": (lambda g, x, W: (g @ W, -(g.T @ x), g.sum(0)), 1.0),
        "missing factor 2 in dx": (lambda g, x, W: (0.5 * g @ W, g.T @ x, g.sum(0)), 1.0),
        "None for db": (lambda g, x, W: (g @ W, g.T @ x, jnp.zeros(W.shape[0], g.dtype)), 1.0),  # jax needs a value
        "dx with columns reversed": (lambda g, x, W: (flip(g @ W), g.T @ x, g.sum(0)), 1.0),
        "one entry of dW 1% off": (one, 1.0),
        "dW 1e-4 relative error": (lambda g, x, W: (g @ W, (1 + 1e-4) * (g.T @ x), g.sum(0)), 1.0),
        "sign of dW, small scale (1e-7)": (lambda g, x, W: (g @ W, -(g.T @ x), g.sum(0)), 1e-7),
    }


def torch_bug_table(has_fast):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    W = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    table = {}
    for bug, (rule, scale) in BUGS.items():
        fn = make_torch_fn(bug.replace(" ", "_"), rule, scale)
        row = {}
        try:
            row["torch slow"] = not torch.autograd.gradcheck(fn.apply, (x, W, b), raise_exception=False)
        except Exception:  # noqa: BLE001 - e.g. shape errors count as caught
            row["torch slow"] = True
        try:
            row["torch fast"] = not torch.autograd.gradcheck(fn.apply, (x, W, b), fast_mode=True, raise_exception=False)
        except Exception:  # noqa: BLE001
            row["torch fast"] = True
        row["ours full"] = check_function(fn, x, W, b).status == "fail"
        if has_fast:
            row["ours fast"] = check_function(fn, x, W, b, mode="fast").status == "fail"
        table[bug] = row
    return table


def jax_bug_table(has_fast):
    try:
        import jax
        import jax.numpy as jnp
        from jax.test_util import check_grads
    except ImportError:
        return {}
    rng = np.random.default_rng(1)
    table = {}
    with jax.enable_x64(True):
        x = jnp.asarray(rng.standard_normal((6, 5)))
        W = jnp.asarray(rng.standard_normal((4, 5)))
        b = jnp.asarray(rng.standard_normal(4))
        c = jnp.asarray(rng.standard_normal((6, 4)))
        for bug, (rule, scale) in jax_bug_rules().items():
            @jax.custom_vjp
            def lin(x, W, b):
                return scale * (x @ W.T + b)

            lin.defvjp(lambda x, W, b: (lin(x, W, b), (x, W)),
                       lambda res, g, rule=rule: rule(g * scale, res[0], res[1]))
            row = {}
            try:
                check_grads(lin, (x, W, b), order=1, modes=("rev",))
                row["jax check_grads"] = False
            except AssertionError:
                row["jax check_grads"] = True
            f = jax.jit(lambda p: jnp.sum(lin(p["x"], p["W"], p["b"]) * c))
            params = {"x": x, "W": W, "b": b}
            row["ours full"] = check_gradient(f, params, mode="full").status == "fail"
            if has_fast:
                row["ours fast"] = check_gradient(f, params, mode="fast").status == "fail"
            table[bug] = row
    return table


# ---------------------------------------------------------------------------
def print_speed(title, n, rows, ref_names):
    print(f"\n== {title}: {n} parameters ==")
    print(f"{'checker':46s} {'wall s':>8s} {'CPU s':>8s} {'f evals':>8s} {'verdict':>7s}  ratio (wall, CPU)")
    ref = {r[0]: r for r in rows}
    for name, t, c, ev, ok in rows:
        ratio = ""
        for key, base in ref_names.items():
            if name.startswith(key) and base in ref:
                ratio = f"{t / ref[base][1]:.2f}, {c / ref[base][2]:.2f} x {base}"
        print(f"{name:46s} {t:8.3f} {c:8.3f} {ev if ev is not None else '-':>8} {'pass' if ok else 'FAIL':>7s}  {ratio}")


def print_bugs(title, table):
    if not table:
        return
    cols = list(next(iter(table.values())).keys())
    print(f"\n== {title}: caught? (the 'correct' row must say no) ==")
    print(f"{'injected bug':34s} " + " ".join(f"{c:>15s}" for c in cols))
    for bug, row in table.items():
        print(f"{bug:34s} " + " ".join(f"{('yes' if row[c] else 'no'):>15s}" for c in cols))
    bugs = [b for b in table if b != "correct"]
    print(f"{'bugs caught':34s} " + " ".join(f"{sum(table[b][c] for b in bugs):>12d}/{len(bugs):<2d}" for c in cols))
    print(f"{'false alarm on correct rule':34s} " + " ".join(f"{('YES' if table['correct'][c] else 'no'):>15s}" for c in cols))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller MLP (about 1.6k parameters)")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--mlp-batch", type=int, default=32, metavar="B",
                    help="examples in the MLP loss (default 32); smaller makes fun cheaper and the checkers' "
                         "own overhead more visible")
    ap.add_argument("--speed-only", action="store_true", help="skip the bug tables")
    args = ap.parse_args(argv)
    global MLP_BATCH
    MLP_BATCH = args.mlp_batch
    try:
        from pytest_gradcheck.numerics import fast  # noqa: F401
        has_fast = True
    except ImportError:
        has_fast = False
    out = {}
    n, rows = bench_torch_mlp(args.quick, has_fast)
    print_speed("torch, float64 MLP cross-entropy loss", n, rows,
                {"check_gradient full": "torch gradcheck (slow)", "check_gradient fast": "torch gradcheck fast_mode"})
    out["torch_mlp"] = {"n": n, "rows": rows}
    if not args.quick:
        cost_rows = bench_full_by_cost()
        print_full_by_cost(cost_rows)
        out["full_by_cost"] = cost_rows
    if has_fast:
        depth_rows = bench_fast_by_depth()
        print_fast_by_depth(depth_rows)
        out["fast_by_depth"] = depth_rows
    if not args.no_jax:
        n, rows = bench_jax_mlp(args.quick, has_fast)
        if rows:
            print_speed("jax, float64 MLP cross-entropy loss (jitted)", n, rows,
                        {"check_gradient": "jax check_grads (order 1, rev)"})
            out["jax_mlp"] = {"n": n, "rows": rows}
    if args.speed_only:
        return
    t = torch_bug_table(has_fast)
    print_bugs("custom torch.autograd.Function (linear layer)", t)
    out["torch_bugs"] = t
    if not args.no_jax:
        j = jax_bug_table(has_fast)
        print_bugs("jax.custom_vjp (linear layer)", j)
        out["jax_bugs"] = j
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
