"""Benchmark of the numerical core against the usual ways of checking a gradient.

    python benchmarks/bench_core.py [--quick] [--json PATH]

1. Cost: for n = 10 ... 10^5 parameters, on a cheap function
   (f = sum(sin(x) * x^2), vectorised numpy) and on a realistic one (softmax
   regression, n = d*k weights), the evaluations and wall time of
   check_gradient (mode="full", default settings), of the classic course loop
   (central differences, eps=1e-7, one entry at a time) and of
   scipy.optimize.check_grad, with the ratios.  The classic loop and scipy
   are skipped above 10^4 (they take O(n^2) time like any full check; their
   time is extrapolated from 10^4 in the table, marked "~"; so is
   check_gradient's at 10^5 when it would take over --max-seconds).
2. Overhead: the checker's own time per evaluation, relative to a ~10 us
   function (target: under 10%).
3. Verdicts on the test corpus (tests/corpus): how many bugs each checker
   catches and how many correct gradients it falsely fails; then the
   real-code patterns (tests/corpus/real_code.py, issue 12) per class:
   correct gradients passed / inconclusive / failed and bugs caught, for
   check_gradient in full, fast and auto mode and for the anchors; then the
   irregular points of issue 20 (tests/corpus/irregular_kinks.py: kinks,
   ties, staircases, branch points) per class and mode.

--quick stops at n = 10^4 and uses fewer repetitions; --corpus runs section 3 only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings

# one BLAS thread: per-evaluation costs of small matrix products are then
# stable, and CPU time equals the work done (set before numpy is imported)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, os.path.join(HERE, ".."))

from pytest_gradcheck import check_gradient  # noqa: E402
from corpus import BUGS, CORRECT  # noqa: E402
from corpus.anchors import course_loop, scipy_rule, torch_rule  # noqa: E402


# ---------------------------------------------------------------- problems


def cheap_problem(n):
    x = np.random.default_rng(0).uniform(-2, 2, size=n)

    def fun(p):
        return float(np.sum(np.sin(p) * p * p))

    def grad(p):
        return np.cos(p) * p * p + 2 * p * np.sin(p)

    return fun, grad, x


def softmax_problem(n, m=16, k=10):
    d = max(1, n // k)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(m, d))
    y = rng.integers(0, k, size=m)
    W0 = 0.1 * rng.normal(size=(d, k))

    def fun(W):
        Z = X @ W
        Z = Z - Z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(m), y]))

    def grad(W):
        Z = X @ W
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        P[np.arange(m), y] -= 1
        return X.T @ P / m

    return fun, grad, W0


def classic_loop(fun, grad, x, eps=1e-7):
    """The course loop as people write it (no pytree handling, no copies)."""
    g = grad(x)
    num = np.zeros(x.size)
    xf = x.reshape(-1)
    n_evals = 0
    for i in range(x.size):
        old = xf[i]
        xf[i] = old + eps
        fp = fun(x)
        xf[i] = old - eps
        fm = fun(x)
        xf[i] = old
        num[i] = (fp - fm) / (2 * eps)
        n_evals += 2
    rel = np.linalg.norm(g.ravel() - num) / (np.linalg.norm(g) + np.linalg.norm(num))
    return rel <= 2e-7, n_evals


def scipy_check(fun, grad, x):
    from scipy.optimize import check_grad

    shape = x.shape
    count = [0]

    def f(v):
        count[0] += 1
        return fun(v.reshape(shape))

    err = check_grad(f, lambda v: grad(v.reshape(shape)).ravel(), x.ravel().copy())
    return err < 1e-5, count[0]


#: the clock: process CPU time (robust to other processes competing for the
#: cores, which wall time is not); --wall switches to wall time
CLOCK = time.process_time


def timed(fn, reps):
    best, out = float("inf"), None
    for _ in range(reps):
        t0 = CLOCK()
        out = fn()
        best = min(best, CLOCK() - t0)
    return best, out


def time_fun(fun, x, target=0.05, repeat=5):
    """Seconds per call of fun at x (best of ``repeat`` timed loops)."""
    reps = 1
    while True:
        t0 = CLOCK()
        for _ in range(reps):
            fun(x)
        dt = CLOCK() - t0
        if dt > target / repeat:
            break
        reps *= 4
    best = dt
    for _ in range(repeat - 1):
        t0 = CLOCK()
        for _ in range(reps):
            fun(x)
        best = min(best, CLOCK() - t0)
    return best / reps


# ---------------------------------------------------------------- sections


def bench_cost(sizes, quick, rows, max_seconds):
    print("\n## 1. Cost of a full check (evaluations, best time)\n")
    head = (f"{'problem':<9} {'n':>7} {'t_f':>8} | {'gradcheck evals':>15} {'time':>8} | "
            f"{'course evals':>12} {'time':>8} | {'scipy evals':>11} {'time':>8} | "
            f"{'evals/course':>12} {'time/course':>11} {'time/scipy':>10} {'verdict':>7}")
    print(head)
    print("-" * len(head))
    for name, make in (("cheap", cheap_problem), ("softmax", softmax_problem)):
        last_per_eval = {}
        for n in sizes:
            fun, grad, x = make(n)
            t_f = time_fun(fun, x)
            reps = 1 if n >= 1000 or quick else 3
            estimate = 2.0 * x.size * t_f * 1.2
            if estimate <= max_seconds or n <= 10_000:
                t_gc, r = timed(lambda: check_gradient(fun, x, grad, mode="full"), reps)
                gc_evals, status, gc_extra = r.n_evals, r.status, False
            else:  # too slow on this machine: extrapolate from the measured cost per evaluation
                gc_evals, status, gc_extra = 2 * x.size + 10, "(skipped)", True
                t_gc = last_per_eval["gradcheck"] * gc_evals * t_f
            last_per_eval["gradcheck"] = t_gc / gc_evals / t_f
            row = {"problem": name, "n": int(x.size), "t_f_s": t_f, "gradcheck_evals": gc_evals,
                   "gradcheck_s": t_gc, "gradcheck_status": status, "gradcheck_extrapolated": gc_extra}
            for label, fn in (("course", classic_loop), ("scipy", scipy_check)):
                if n <= 10_000:
                    t, (ok, ev) = timed(lambda: fn(fun, grad, x.copy()), reps)
                    row[f"{label}_evals"], row[f"{label}_s"], row[f"{label}_extrapolated"] = ev, t, False
                    last_per_eval[label] = t / ev / t_f
                else:  # same O(n) evaluations of an O(n) function: extrapolate
                    ev = 2 * x.size if label == "course" else x.size + 1
                    row[f"{label}_evals"] = ev
                    row[f"{label}_s"] = last_per_eval[label] * ev * t_f
                    row[f"{label}_extrapolated"] = True
            rows.append(row)
            mark = {True: "~", False: " "}
            print(f"{name:<9} {x.size:>7} {t_f * 1e6:>6.1f}us | {gc_evals:>15} {mark[gc_extra]}{t_gc:>7.3f}s | "
                  f"{row['course_evals']:>12} {mark[row['course_extrapolated']]}{row['course_s']:>7.3f}s | "
                  f"{row['scipy_evals']:>11} {mark[row['scipy_extrapolated']]}{row['scipy_s']:>7.3f}s | "
                  f"{gc_evals / row['course_evals']:>12.2f} {t_gc / row['course_s']:>11.2f} "
                  f"{t_gc / row['scipy_s']:>10.2f} {status:>7}")


def bench_overhead(quick, out):
    print("\n## 2. Checker overhead per evaluation (function of ~10 us)\n")
    print("Per evaluation: the check's wall time / its evaluations, against the bare course loop's wall\n"
          "time / its evaluations (same function, runs interleaved, best of each) and against t_f timed alone.")
    results = []
    rounds = 5 if quick else 11
    for n in (30, 100, 300, 1000):
        x = np.random.default_rng(2).uniform(-2, 2, size=n)

        def fun(p):  # ~5-30 us for these n
            return float(np.sum(np.sin(p) * p * p))

        def grad(p):
            return np.cos(p) * p * p + 2 * p * np.sin(p)

        best_gc = best_loop = float("inf")
        r = None
        for _ in range(rounds):
            t0 = CLOCK()
            r = check_gradient(fun, x, grad, mode="full")
            best_gc = min(best_gc, CLOCK() - t0)
            t0 = CLOCK()
            classic_loop(fun, grad, x.copy())
            best_loop = min(best_loop, CLOCK() - t0)
        t_f = time_fun(fun, x, target=0.1)
        per_gc, per_loop = best_gc / r.n_evals, best_loop / (2 * n)
        results.append({"n": n, "t_f_us": t_f * 1e6, "n_evals": r.n_evals, "gradcheck_s": best_gc,
                        "course_loop_s": best_loop, "per_eval_gradcheck_us": per_gc * 1e6,
                        "per_eval_loop_us": per_loop * 1e6,
                        "overhead_vs_loop": per_gc / per_loop - 1, "overhead_vs_t_f": per_gc / t_f - 1})
        print(f"n={n:>5}  t_f={t_f * 1e6:6.1f} us  check: {r.n_evals:>5} evals, {per_gc * 1e6:6.1f} us/eval;"
              f"  course loop: {per_loop * 1e6:6.1f} us/eval;  overhead {100 * (per_gc / per_loop - 1):6.1f}% vs loop,"
              f" {100 * (per_gc / t_f - 1):6.1f}% vs t_f")
    ev = np.array([r["n_evals"] for r in results], dtype=float)
    extra = np.array([r["gradcheck_s"] - r["course_loop_s"] * r["n_evals"] / (2 * r["n"]) for r in results])
    slope, intercept = np.polyfit(ev, extra, 1)
    print(f"fit of (check time - loop time per eval x evals) over n: fixed {intercept * 1e3:.2f} ms per check, "
          f"marginal {slope * 1e6:.2f} us per evaluation")
    out["overhead"] = {"rows": results, "fixed_s": float(intercept), "per_eval_s": float(slope)}


def bench_resolution(out, methods=("central", "central4", "forward"), trials=3):
    """Smallest error caught: one typical-size entry of each correct corpus
    gradient multiplied by 1 + delta, for delta = 1e-2 ... 1e-6."""
    from corpus.anchors import flat_vector, leaves_of, rebuild

    print("\n## 4. Resolution: one entry off by a relative delta, share of checks that fail\n")
    deltas = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
    print(f"{'method':<9} {'dtype':<8} " + " ".join(f"{d:>8.0e}" for d in deltas))
    table = {}
    for method in methods:
        counts = {}
        for c in CORRECT:
            if c.kink or c.inconclusive_ok:
                continue
            p = c.params()
            g0 = c.grad(c.params())
            v0 = flat_vector(g0)
            big = np.flatnonzero(np.abs(v0) >= 0.1 * np.max(np.abs(v0)))
            rng = np.random.default_rng(0)
            group = "float32" if "float32" in c.tags else "float64"
            for delta in deltas:
                for _ in range(trials):
                    k = int(rng.choice(big))
                    v = v0.copy()
                    v[k] *= 1 + delta
                    parts, off = [], 0
                    for x in leaves_of(g0):
                        size = int(np.prod(np.shape(x)))
                        parts.append(v[off:off + size].reshape(np.shape(x)).astype(np.asarray(x).dtype))
                        off += size
                    bad = rebuild(g0, iter(parts))
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        r = check_gradient(c.fun, p, lambda q, bad=bad: bad, method=method)
                    tot, fail = counts.get((group, delta), (0, 0))
                    counts[(group, delta)] = (tot + 1, fail + (r.status == "fail"))
        for group in ("float64", "float32"):
            cells = [counts.get((group, d), (0, 0)) for d in deltas]
            print(f"{method:<9} {group:<8} " + " ".join(f"{f / t:>8.0%}" if t else f"{'-':>8}" for t, f in cells))
            table[f"{method}/{group}"] = {str(d): cells[i] for i, d in enumerate(deltas)}
    out["resolution"] = table


def warm_up():
    fun, grad, x = cheap_problem(5)
    check_gradient(fun, x, grad)
    classic_loop(fun, grad, x.copy())
    scipy_check(fun, grad, x.copy())


def bench_corpus(out):
    print("\n## 3. Verdicts on the corpus "
          f"({len(CORRECT)} correct gradients, {len(BUGS)} bugs)\n")
    checkers = {
        "check_gradient (default)": lambda c: check_gradient(c.fun, c.params(), c.grad).passed,
        "torch.gradcheck rule": lambda c: torch_rule(c.fun, c.grad, c.params())[0],
        "classic course loop": lambda c: course_loop(c.fun, c.grad, c.params())[0],
        "scipy check_grad < 1e-5": lambda c: scipy_rule(c.fun, c.grad, c.params())[0],
    }
    table = {}
    print(f"{'checker':<26} {'bugs caught':>12} {'false failures':>15}  missed bugs / falsely failed")
    for name, fn in checkers.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            missed = [b.name for b in BUGS if fn(b)]
            false = [c.name for c in CORRECT if not fn(c)]
        table[name] = {"caught": len(BUGS) - len(missed), "bugs": len(BUGS), "false_failures": len(false),
                       "correct": len(CORRECT), "missed": missed, "falsely_failed": false}
        print(f"{name:<26} {len(BUGS) - len(missed):>5} / {len(BUGS):<4} {len(false):>7} / {len(CORRECT):<5}  "
              f"{', '.join(missed + false) or '-'}")
    out["corpus"] = table


def _plain(case):
    """(fun, grad) of a real-code case as the anchors take them: a (value, grad) fun is split in two."""
    if not case.value_and_grad:
        return case.fun, case.grad
    return (lambda p: case.fun(p)[0]), (lambda p: case.fun(p)[1])


def _status(run, case):
    """A checker's status on a case: pass | inconclusive | fail, or error when it raised."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return run(case)
    except Exception:  # noqa: BLE001 - an anchor that cannot handle the case (counted, not hidden)
        return "error"


def bench_real_code(out, corpus="real_code"):
    """Real-code patterns per class (issue 12; with corpus="irregular_precision" the precision classes
    of issue 20): correct gradients pass / inconclusive / fail, bugs caught.

    The anchors only pass or fail (they know no "inconclusive"); a (value, grad) objective is split
    into fun and grad for them.  'error' counts a checker that raised on a case."""
    if corpus == "real_code":
        from corpus.real_code import REAL_BUGS, REAL_CORRECT
        section = "3b"
    else:
        from corpus.irregular_precision import IRREGULAR_BUGS as REAL_BUGS
        from corpus.irregular_precision import IRREGULAR_CORRECT as REAL_CORRECT
        section = "3c"

    def gradcheck(mode):
        return lambda c: check_gradient(c.fun, c.params(), c.grad, mode=mode).status

    def anchor(rule):
        return lambda c: "pass" if rule(*_plain(c), c.params())[0] else "fail"

    checkers = {"gradcheck full": gradcheck("full"), "gradcheck fast": gradcheck("fast"),
                "gradcheck auto": gradcheck("auto"), "torch rule": anchor(torch_rule),
                "course loop": anchor(course_loop), "scipy < 1e-5": anchor(scipy_rule)}
    classes = sorted({c.cls for c in REAL_CORRECT + REAL_BUGS})
    print(f"\n## {section}. Verdicts on real-code patterns (tests/corpus/{corpus}.py: {len(REAL_CORRECT)} correct "
          f"gradients, {len(REAL_BUGS)} bugs)\n")
    print("Per class: correct gradients passed/inconclusive/failed (+errors), then bugs caught/bugs.\n")
    width = 17
    head = f"{'class':<18} {'cases':>6} | " + " | ".join(f"{name:^{width}}" for name in checkers)
    print(head)
    print("-" * len(head))
    table = {}
    totals = {name: {"pass": 0, "inconclusive": 0, "fail": 0, "error": 0, "caught": 0} for name in checkers}
    for cls in classes:
        good = [c for c in REAL_CORRECT if c.cls == cls]
        bugs = [b for b in REAL_BUGS if b.cls == cls]
        cells, row = [], {}
        for name, run in checkers.items():
            st = [_status(run, c) for c in good]
            counts = {k: st.count(k) for k in ("pass", "inconclusive", "fail", "error")}
            caught = sum(_status(run, b) == "fail" for b in bugs)
            row[name] = dict(counts, caught=caught, bugs=len(bugs),
                             falsely_failed=[c.name for c, s in zip(good, st) if s == "fail"],
                             missed=[b.name for b in bugs if _status(run, b) != "fail"])
            for k in counts:
                totals[name][k] += counts[k]
            totals[name]["caught"] += caught
            err = f"+{counts['error']}e" if counts["error"] else ""
            cells.append(f"{counts['pass']}/{counts['inconclusive']}/{counts['fail']}{err} {caught}/{len(bugs)}")
        table[cls] = row
        print(f"{cls:<18} {len(good):>2}+{len(bugs):<3} | " + " | ".join(f"{c:^{width}}" for c in cells))
    print("-" * len(head))
    cells = []
    for name in checkers:
        t = totals[name]
        err = f"+{t['error']}e" if t["error"] else ""
        cells.append(f"{t['pass']}/{t['inconclusive']}/{t['fail']}{err} {t['caught']}/{len(REAL_BUGS)}")
    print(f"{'all':<18} {len(REAL_CORRECT):>2}+{len(REAL_BUGS):<3} | " + " | ".join(f"{c:^{width}}" for c in cells))
    for name in checkers:
        bad = [n for row in table.values() for n in row[name]["falsely_failed"]]
        missed = [n for row in table.values() for n in row[name]["missed"]]
        if bad or missed:
            print(f"  {name}: falsely failed {', '.join(bad) or '-'}; missed {', '.join(missed) or '-'}")
    out[corpus] = {"classes": table, "totals": totals}


def _irregular_available(case):
    if not case.needs:
        return True
    try:
        __import__(case.needs)
        return True
    except ImportError:
        return False


def bench_irregular(out):
    """Irregular points (issue 20: tests/corpus/irregular_kinks.py) per class and mode: correct
    derivatives passed/inconclusive/failed, bugs caught (cases whose module is absent are skipped)."""
    from corpus.irregular_kinks import IRREGULAR, MODES

    cases = [c for c in IRREGULAR if _irregular_available(c)]
    good = [c for c in cases if c.kind == "correct"]
    print(f"\n## 3c. Verdicts at irregular points (tests/corpus/irregular_kinks.py: {len(good)} correct, "
          f"{len(cases) - len(good)} bugs)\n")
    print("Per class: correct derivatives passed/inconclusive/failed (+errors), then bugs caught/bugs.\n")
    head = f"{'class':<14} " + " | ".join(f"{m:^17}" for m in MODES)
    print(head)
    print("-" * len(head))
    table = {}
    for cls in sorted({c.cls for c in cases}):
        cells, row = [], {}
        for mode in MODES:
            st = {c.name: _status(lambda c: c.run(mode).status, c) for c in cases if c.cls == cls}
            g = [st[c.name] for c in good if c.cls == cls]
            bugs = [c for c in cases if c.cls == cls and c.kind == "bug"]
            caught = sum(st[b.name] == "fail" for b in bugs)
            counts = {k: g.count(k) for k in ("pass", "inconclusive", "fail", "error")}
            row[mode] = dict(counts, caught=caught, bugs=len(bugs))
            err = f"+{counts['error']}e" if counts["error"] else ""
            cells.append(f"{counts['pass']}/{counts['inconclusive']}/{counts['fail']}{err} {caught}/{len(bugs)}")
        table[cls] = row
        print(f"{cls:<14} " + " | ".join(f"{c:^17}" for c in cells))
    out["irregular"] = table


def print_verdicts():
    """One deterministic line per (case, mode, method): the diffable record
    of what the checker decides on the corpus."""
    runs = [("full", "central"), ("full", "central4"), ("full", "forward"), ("fast", "central"),
            ("auto", "central")]
    for c in CORRECT + BUGS:
        for mode, method in runs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = check_gradient(c.fun, c.params(), c.grad, mode=mode, method=method)
            print(f"{c.name:<40} {mode:<5} {method:<9} {r.status:<12} ratio={r.max_ratio:.6g} "
                  f"evals={r.n_evals} checked={r.n_checked}")
    from corpus.irregular_kinks import IRREGULAR, MODES

    for c in IRREGULAR:
        if not _irregular_available(c):
            continue
        for mode in MODES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = c.run(mode)
            print(f"{('bug:' if c.kind == 'bug' else 'irregular:') + c.name:<40} {mode:<5} central   {r.status:<12} "
                  f"ratio={r.max_ratio:.6g} evals={r.n_evals} checked={r.n_checked}")
    from corpus.irregular_precision import IRREGULAR_BUGS, IRREGULAR_CORRECT
    for c in IRREGULAR_CORRECT + IRREGULAR_BUGS:  # issue 20's precision classes, after the earlier corpus
        for mode in ("full", "fast", "auto"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = check_gradient(c.fun, c.params(), c.grad, mode=mode)
            print(f"{c.name:<40} {mode:<5} {'central':<9} {r.status:<12} ratio={r.max_ratio:.6g} "
                  f"evals={r.n_evals} checked={r.n_checked} ({c.kind}; ok: {'/'.join(c.ok)})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="stop at n=10^4, fewer repetitions")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    ap.add_argument("--resolution", action="store_true",
                    help="also measure the smallest error caught on the corpus (a minute or two)")
    ap.add_argument("--wall", action="store_true", help="time with the wall clock instead of process CPU time")
    ap.add_argument("--max-seconds", metavar="S", type=float, default=120.0,
                    help="above n=10^4, skip (and extrapolate) a full check expected to take longer (default 120)")
    ap.add_argument("--corpus", action="store_true",
                    help="only the verdicts on the corpus and the real-code patterns (section 3; seconds)")
    ap.add_argument("--verdicts", action="store_true",
                    help="only print each corpus case's status, ratio and evaluation count per mode (diffable)")
    args = ap.parse_args(argv)
    if args.verdicts:
        print_verdicts()
        return
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter
    sizes = [10, 100, 1000, 10_000] + ([] if args.quick else [100_000])
    print(f"# bench_core: python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs{' (quick)' if args.quick else ''}, "
          f"load average {os.getloadavg()[0]:.1f} at start; clock: {'wall' if args.wall else 'process CPU'} time")
    out = {"sizes": sizes, "cost": []}
    warm_up()
    if not args.corpus:
        bench_cost(sizes, args.quick, out["cost"], args.max_seconds)
        bench_overhead(args.quick, out)
    bench_corpus(out)
    bench_real_code(out)
    bench_irregular(out)
    bench_real_code(out, "irregular_precision")
    if args.resolution:
        bench_resolution(out)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
