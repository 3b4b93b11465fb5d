"""Fast mode: random-direction probes, then localisation by bisection.

Probes
------
Instead of n entry-wise differences, fast mode compares K directional
derivatives of f with the matching projections of the analytic gradient a.
Direction k is d = s (.) L: s has independent random signs (Rademacher +-1,
never non-negative, so errors of opposite sign cannot systematically cancel)
and L is each entry's scale (the same scale full mode steps by), raised for
entries whose own magnitude is too small for a probe to see them (a bias of
1e-13 beside unit weights: see _Fast._visible_scale).  In these
scaled coordinates a probe sees

    D_k  ~ d . a_true   (central differences of t -> f(x0 + t d), Richardson-refined when needed)
    P_k  =  a . Delta / h (the analytic projection, using the steps actually taken)

and the discrepancy is  P_k - D_k = sum_i s_i v_i,  v_i = L_i (a_i - a_true,i).

Tolerance of a probe (it must not grow with n the way torch's atol*sum(u)*sum(v) does)
    T = SAFETY * E_dir + C_H * sqrt(sum_i (d_i F_i)^2)
E_dir is the error estimate of the directional derivative (roundoff
sqrt(sum w_j^2)*sigma/h with sigma the measured noise of f, plus the
Richardson truncation estimate; refinement is full mode's chain of levels,
refine.Chain, applied to t -> f(x0 + t d)), exactly as for one entry in full
mode: it does not depend on n.  F_i is full mode's analytic-precision floor of entry i.  Its
projection is taken as a root-sum-square, not as sum |d_i| F_i (which grows
like n): whatever the signs of the analytic side's rounding errors e_i
(|e_i| <= F_i), the signs s_i are independent of them, so by Hoeffding's
inequality P(|sum s_i d_i e_i| > t) <= 2 exp(-t^2 / (2 sum d_i^2 F_i^2)); with
C_H = 4 that is below 7e-4 per probe even if every e_i sat at its bound (they
sit 10-100x below it).  With explicit atol/rtol the same argument applies to
the per-entry allowance t_i = atol + rtol |a_i|.

Escape probability (the number reported as ``escape_probability``)
    * A single wrong entry j: every Rademacher probe sees exactly +-v_j, so it
      is caught by the first probe whenever |v_j| > T (escape probability 0),
      independently of n and of the number of probes.  In gradient units the
      per-entry detection threshold is T / L_j.
    * Any discrepancy v whose largest entry exceeds T: condition on all signs
      but s_j (j = argmax |v_j|); the two values S' +- v_j differ by 2|v_j|, so
      max(|S' + v_j|, |S' - v_j|) = |S'| + |v_j| > T: at least one of the two
      equally likely signs detects it.  Each probe therefore misses with
      probability <= 1/2 and all K independent probes with probability
      <= 2^-K, whatever n and however the error is spread (the bound is tight:
      two equal and opposite errors cancel with probability exactly 1/2).
    On a pass we report 2^-K (the bound for discrepancies with an entry above
    threshold).  On a failure we report the escape probability of the
    discrepancy actually found (the confirmed entry errors, scaled by L),
    estimated from 4096 seeded draws of the probe signs, raised to the K-th
    power: 0 for a single wrong entry.

Default K: the target "at most one in a thousand": 2^-K <= 1e-3 gives
K = 10 probes (``n_probes`` changes it).  Gaussian probes would not give the
exact single-entry property (a N(0,1) weight falls below 0.1 with probability 8%).

Noise, lazily
-------------
The tolerance needs sigma, the noise of f, which full mode measures with 8
evaluations (noise.measure_noise).  Fast mode first probes with the least
noise f can have: its roundoff at params, eps_f |f0| (or the spread of the
repeated call, if larger).  Every tolerance built on it is at most the one
the measured sigma would give (sigma is never below that floor), so when all
K probes agree at their first step the pass stands -- and is reported with
that tighter threshold.  At the first probe that does not agree, the noise is
measured (8 evaluations).  If it leaves the probes' step within 25% and their
scales unchanged (f's noise is near its roundoff, the probe merely needs
refining), the round goes on with it and the probes already taken stand;
otherwise (f is noisier: its steps must grow) the probes start again with
steps and tolerances from the measured noise, at most 2K evaluations having
been spent.  Before a full probe's failure stands, f's noise is measured once more at the
probes' own scale (noise.staircase_noise: a float32 staircase hidden under a smooth float64
term is invisible at params); if it reveals stairs, the round starts again with their noise.
A passing check thus costs f0, the repeated f0 and 2K
evaluations: 22 whatever n (full mode: 2n); torch's fast mode costs 2 per
input tensor plus f0 and a backward pass.

Localisation
------------
When a probe fails (or meets a kink), its direction is restricted to blocks:
first split at leaf boundaries (leaf found first), then halves of the
remaining range.  Each block is probed like the whole; failing blocks are
split further, smallest first (depth first; worst ratio among equals), down to blocks of
BLOCK entries, whose entries are then checked one by one exactly as full mode
does (same steps, refinement, kink logic).  One wrong entry costs
O(log2 n) block probes; the search stops after MAX_FOUND confirmed failures or
when its evaluation budget is spent.  ``checked`` in the result marks the
entries that were checked entry-wise; their numbers are reported exactly as in
full mode.  If probes disagree but no entry can be confirmed (an error spread
thinly over many entries, each below its own tolerance), the status is
"inconclusive" with a message to run mode="full".

mode="auto" uses full mode up to AUTO_FULL_MAX parameters and fast mode above.

Layer: numerics, upper (beside full.py).  Imports errors, frameworks.base
(``MIN_BATCH_ROWS``), verdict, noise, refine, entries, assemble and stencils;
never full or check (check.py imports this module, lazily).
"""

from __future__ import annotations

import heapq
import math
import statistics

import numpy as np

from ..errors import GradcheckInputError
from ..frameworks.base import MIN_BATCH_ROWS
from .advice import low_precision_note
from .assemble import assemble, nondeterministic_result
from .entries import entry_estimates, f_underflows
from .noise import adopt_staircase, measure_noise, noise_level, staircase_noise
from .refine import MAX_LEVELS, R_FACTOR, Chain, real_value
from .stencils import COMPLEX_STEP, SCHEMES
from .verdict import FAIL, INCONCLUSIVE, PASS, SAFETY, ZETA, Judge, norm2, tiny_for_eps, typical_magnitude

#: mode="auto": full mode up to this many parameters (2n evaluations are then
#: cheap next to a test suite), fast mode above
AUTO_FULL_MAX = 2000
#: probes by default: 2^-K <= 1e-3
N_PROBES = 10
#: Hoeffding factor for the projected analytic-precision floor
C_H = 4.0
#: blocks of at most this many entries are checked entry by entry
BLOCK = 4
#: stop localising after this many confirmed failing entries
MAX_FOUND = 10
#: an entry's probe scale is raised until a relative error of VISIBLE in it moves a probe by the tolerance
VISIBLE = 1e-3
#: localisation budget: LOCAL_BUDGET * (log2(n) + 4) evaluations of f
LOCAL_BUDGET = 40
#: draws for the escape-probability estimate of a found discrepancy
ESCAPE_DRAWS = 4096


def prefers_fast(problem) -> bool:
    """mode="auto": fast mode above AUTO_FULL_MAX parameters."""
    return problem.n > AUTO_FULL_MAX


class _Probe:
    __slots__ = ("lo", "hi", "D", "P", "err", "tol", "verdict", "reason", "ratio")

    @property
    def disc(self):
        return self.P - self.D


class _Fast:
    def __init__(self, problem, judge, n_probes, assume_least_noise=False):
        self.p = problem
        self.judge = judge
        self.K = n_probes
        self.scheme = SCHEMES.get(problem.method)
        self.complex = problem.method == "complex"
        ev = problem.ev
        self.dts = [f.dtype for f in ev.flat]
        # points are rounded to the buffers' dtypes only where some buffer is narrower than float64
        self.narrow = [(leaf.slice, dt) for leaf, dt in zip(problem.spec.leaves, self.dts)
                       if dt != np.float64 and dt.kind == "f"]
        self.f0 = float(np.real(ev.f0))
        self.assumed_noise = assume_least_noise and not self.complex
        if self.complex:
            self.sigma, self.eps_f = measure_noise(problem)
            self.eps_eff = self.eps_f
            self.h = COMPLEX_STEP
            problem.sigma, problem.eps_eff = self.sigma, self.eps_eff
        else:
            self.eps_f = problem.ev.eps_out or float(np.finfo(np.float64).eps)
            if self.assumed_noise:
                # the least noise f can have (see check_fast): its roundoff at f0 or the spread of repeated calls
                self.sigma = max(self.eps_f * abs(self.f0) + tiny_for_eps(self.eps_f),
                                 getattr(problem, "repeat_noise", 0.0))
                self.eps_eff = self.eps_f
            else:
                self.sigma, self.eps_eff = noise_level(problem)
            self.h = self.scheme.base_step(self.eps_eff) if problem.eps is None else float(problem.eps)
        # the per-entry allowance whose projection is the probe's floor (see the module docstring)
        self.allowance = (judge.atol + judge.rtol * np.abs(problem.analytic)) if judge.explicit else problem.floor
        if self.scheme is not None:  # None for the complex step
            self.offsets = sorted(set(o for o in self.scheme.offsets if o != 0.0) | {-1.0, 1.0})
            self.R0_unit = self.scheme.weight_norm  # roundoff of one directional difference, in sigma/h
        self.n_raised = 0
        # probe directions are scaled by L unless the user fixed an absolute step
        self.scale = problem.L if (problem.eps is None or self.complex) else np.ones(problem.n)
        if problem.eps is None and not self.complex:
            self.scale = self._visible_scale(problem)
        self.budget = 0
        self._cache: dict = {}
        self._full_floor = None

    def _visible_scale(self, problem):
        """L, raised where an entry's own magnitude is too small for the probes to see it.

        Entry j moves a probe by L_j * error_j.  A parameter far smaller than the
        scale on which f varies in it (a bias of 1e-13 beside unit weights) would
        need an error of many times its gradient to reach the probe tolerance T0.
        Its scale is raised just enough that an error of VISIBLE * (|a_j| + the
        leaf's typical gradient) moves the probe by T0, and at most to the room
        full mode allows its steps (the largest of its own, its leaf's and all
        params' scale)."""
        L = problem.L
        room = getattr(problem, "room", None)
        if room is None:
            return L
        # the size an error in entry j is measured against: its own gradient (down to 1% of its leaf's)
        g = np.maximum(np.abs(problem.analytic), 1e-2 * problem.grad_scale)
        T0 = SAFETY * self.scheme.weight_norm * self.sigma / self.h + C_H * norm2(L * problem.floor)
        with np.errstate(divide="ignore", invalid="ignore"):
            need = np.where(g > 0, T0 / (VISIBLE * g), 0.0)
        raised = (L < need) & np.isfinite(need)
        if not raised.any():
            return L
        out = L.copy()
        out[raised] = np.minimum(need[raised], room[raised])
        self.n_raised = int(raised.sum())
        return out

    # -- one directional derivative -------------------------------------
    def _round(self, x):
        """x rounded in place to the evaluator's buffer dtypes (the point fun actually sees)."""
        for sl, dt in self.narrow:
            x[sl] = x[sl].astype(dt).astype(np.float64)
        return x

    def _floor(self, d):
        return C_H * norm2(d * self.allowance)

    def _tol(self, err, floor):
        if self.judge.explicit:
            return floor
        return SAFETY * err + floor

    def _offsets(self):
        return self.offsets

    def prefetch(self, signs):
        """Stage-A values of the K directions in batched calls (when the framework offers them; the
        directions are built only then)."""
        p = self.p
        if p.batched is None or self.complex:
            return
        if not p.vectorized and len(signs) * len(self._offsets()) < MIN_BATCH_ROWS:
            return  # the batch evaluator would make plain calls of these few points (base.batch_dispatcher)
        pts = [self._round(p.x0 + (o * self.h) * (signs.row(k) * self.scale))
               for k in range(len(signs)) for o in self._offsets()]
        rows = max(1, p.batch_rows())
        vals = []
        for k in range(0, len(pts), rows):
            chunk = np.array(pts[k:k + rows])
            vals.extend(float(v) for v in np.asarray(p.batched(chunk), dtype=np.float64).ravel())
            p.ev.n_evals += chunk.shape[0]
        for x, v in zip(pts, vals):
            self._cache[x.tobytes()] = v

    def _level(self, d, h):
        """(D, P, fwd, bwd, finite): scheme estimate, analytic projection, one-sided slopes at step h."""
        p = self.p
        if self._cache:  # stage-A values fetched in batches (prefetch): look each point up
            got = {}
            for o in self.offsets:
                x = self._round(p.x0 + (o * h) * d)
                v = self._cache.pop(x.tobytes(), None)
                if v is None:
                    v = real_value(p.ev.at_vector(x))
                with np.errstate(invalid="ignore"):  # inf - inf at entries held fixed (non-finite)
                    x -= p.x0  # the step actually taken (rounded), for the analytic projection
                if p.held is not None:
                    x[p.held] = 0.0  # held entries do not move
                got[o] = (v, float(p.analytic @ x))
        else:
            got = dict(zip(self.offsets, ((real_value(v), pr) for v, pr in
                                          p.ev.along(d, [o * h for o in self.offsets], p.analytic))))
        f0 = self.f0
        sch = self.scheme
        D = sum(w * (f0 if o == 0.0 else got[o][0]) for o, w in zip(sch.offsets, sch.weights)) / h
        P = sum(w * (0.0 if o == 0.0 else got[o][1]) for o, w in zip(sch.offsets, sch.weights)) / h
        fwd = (got[1.0][0] - f0) / h
        bwd = (f0 - got[-1.0][0]) / h
        finite = all(math.isfinite(v[0]) for v in got.values())
        return D, P, fwd, bwd, finite

    def probe(self, lo, hi, s):
        """Directional check along s restricted to [lo, hi)."""
        pr = _Probe()
        pr.lo, pr.hi = lo, hi
        if lo == 0 and hi == self.p.n:
            d = np.multiply(s, self.scale)
        else:
            d = np.zeros(self.p.n)
            np.multiply(s[lo:hi], self.scale[lo:hi], out=d[lo:hi])
        if lo == 0 and hi == self.p.n:  # |d_i| = scale_i whatever the signs: one floor for every full probe
            if self._full_floor is None:
                self._full_floor = self._floor(d)
            floor = self._full_floor
        else:
            floor = self._floor(d)
        if self.complex:
            self._complex_probe(pr, d, floor)
            return pr
        R0 = self.R0_unit * self.sigma / self.h
        D, P, fwd, bwd, finite = self._level(d, self.h)
        settled = finite and abs(D - P) <= self._tol(R0, floor)
        if not settled and self.assumed_noise:
            # not settled at the first step: measure the noise before judging any further
            if not self._adopt_measured_noise():
                return None  # the measured noise changes the probes' steps or scales: start again
            R0 = self.R0_unit * self.sigma / self.h
            settled = finite and abs(D - P) <= self._tol(R0, floor)
        if settled:
            pr.D, pr.P, pr.err, pr.verdict, pr.reason = D, P, R0, PASS, ""
        else:
            self._refine(pr, d, D, P, fwd, bwd, floor)
            if pr.verdict == FAIL and lo == 0 and hi == self.p.n and not self.judge.explicit \
                    and not getattr(self.p, "stairs_checked", False):
                # before a failure stands: f's noise at the probes' scale (noise.staircase_noise); a
                # staircase hidden under a smooth term means a fresh round with its noise
                found = staircase_noise(self.p, self.h * self.scale)
                if found is not None:
                    adopt_staircase(self.p, found)
                    return None
        pr.tol = self._tol(pr.err, floor)
        diff = abs(pr.P - pr.D)
        pr.ratio = diff / pr.tol if pr.tol > 0 else (0.0 if diff == 0 else math.inf)
        if not math.isfinite(pr.ratio) and pr.verdict == PASS:
            pr.ratio = 0.0
        return pr

    def _adopt_measured_noise(self) -> bool:
        """Measure f's noise and judge from now on with it, keeping the probes' step h and scales
        (so the probes already taken, which passed at a tighter tolerance, stand).  False when the
        measured noise would move the step by more than 25% or change the scales: a fresh round
        with the measured noise is then needed."""
        sigma, eps_eff = noise_level(self.p)
        if self.p.eps is None:
            if self.scheme.base_step(eps_eff) > 1.25 * self.h:
                return False
            self.sigma = sigma
            if not np.array_equal(self._visible_scale(self.p), self.scale):
                return False
        self.sigma, self.eps_eff = sigma, eps_eff
        self.assumed_noise = False
        return True

    def run(self, signs):
        """The K probes along ``signs`` (a _Signs) over all entries; stops at a confirmed failure (to
        localise it).  None when the round has to start again: at the assumed noise, with the measured
        one; or when a failing probe revealed a staircase (noise.staircase_noise), with its noise.
        Each probe's signs are unpacked when it runs, its direction built then and dropped after."""
        n = self.p.n
        self.prefetch(signs)
        probes = []
        for k in range(len(signs)):
            pr = self.probe(0, n, signs.row(k))
            if pr is None:
                return None
            probes.append(pr)
            if pr.verdict == FAIL:
                break  # a confirmed disagreement: the check fails; localise it rather than probe on
        return probes

    def _complex_probe(self, pr, d, floor):
        p = self.p
        x = p.x0 + 1j * self.h * d
        v = p.ev.at_vector(x)
        if not isinstance(v, complex):
            raise GradcheckInputError("method='complex' needs complex-analytic code, but fun returned a real value "
                                      "for complex input")
        pr.D = v.imag / self.h
        pr.P = float(p.analytic @ d)
        pr.err = 16.0 * self.eps_f * (abs(pr.D) + float(np.sqrt(np.sum((d * p.analytic) ** 2))))
        pr.tol = self._tol(pr.err, floor)
        diff = abs(pr.P - pr.D)
        pr.verdict = PASS if diff <= pr.tol else FAIL
        pr.reason = ""
        pr.ratio = diff / pr.tol if pr.tol > 0 else (0.0 if diff == 0 else math.inf)

    def _refine(self, pr, d, D0, P0, fwd0, bwd0, floor):
        """Shrink the step, Richardson-extrapolate, confirm a plateau: full mode's chain of levels
        (refine.Chain) applied to t -> f(x0 + t d).  The analytic projection moves slightly from
        level to level (steps are rounded to the buffers' dtypes), so each level's estimates are
        shifted by P - P0 and judged against P0."""
        shim = _Shim(P0, floor, float(np.sqrt(np.sum((d * self.p.analytic) ** 2))), self)
        sch = self.scheme

        def level(h):
            D, P, fwd, bwd, finite = self._level(d, h)
            s = P - P0
            return D - s, fwd - s, bwd - s, h, finite

        chain = Chain(shim, shim, sch, 0, self.sigma)
        chain.start(D0, fwd0, bwd0)
        h = self.h
        got = None
        for _ in range(MAX_LEVELS):
            h = h / R_FACTOR
            if h < 1e-15:
                break
            got = chain.feed(*level(h))
            if got is not None:
                break
        if got is None:
            final = chain.final()
            if chain.state == "unsettled" and self.p.eps is None:
                up = Chain(shim, shim, sch, 0, self.sigma)
                up.start(*level(self.h * R_FACTOR ** 2)[:3])
                up.disc0 = abs(D0 - P0) if math.isfinite(D0) else math.inf  # see refine.refine
                for lv in (level(self.h * R_FACTOR), (D0, fwd0, bwd0, self.h, math.isfinite(D0))):
                    got = up.feed(*lv)
                    if got is not None:
                        break
                if got is None:
                    second = up.final()
                    final = second if second[2] == FAIL else final
            if got is None:
                got = final
        est, e, v = got[:3]
        reason = got[3] if len(got) > 3 else ""
        if reason and reason.startswith("kink"):
            reason = "kink along this direction: " + reason
        pr.D, pr.P, pr.err, pr.verdict, pr.reason = est, P0, e, v, reason
        if not math.isfinite(pr.err):
            pr.err = abs(pr.D - pr.P) if math.isfinite(pr.D) else math.inf

    # -- entry-wise checks (exactly as full mode) --------------------------
    def check_entries(self, idx, numeric, err, verdict, reasons):
        p, judge = self.p, self.judge
        idx = np.asarray(sorted(set(int(i) for i in idx)), dtype=np.int64)
        if idx.size == 0:
            return
        a = p.analytic
        if self.complex:
            eps_f = self.eps_f
            for i in idx:
                v = p.ev.at(int(i), p.x0[i] + 1j * COMPLEX_STEP * p.L[i])
                D = v.imag / (COMPLEX_STEP * p.L[i])
                e = 16.0 * eps_f * (abs(D) + p.grad_scale[i])
                numeric[i], err[i] = D, e
                verdict[i] = PASS if abs(a[i] - D) <= judge.tol(int(i), D, e) else FAIL
            return
        num, e, v, why = entry_estimates(p, judge, idx)
        numeric[idx], err[idx], verdict[idx] = num[idx], e[idx], v[idx]
        reasons.update(why)


class _Shim:
    """A one-entry problem and judge for refine.Chain: the analytic projection P0, its floor,
    and fast mode's probe tolerance."""

    def __init__(self, P0, floor, scale, fx):
        self.analytic = np.array([P0])
        self.floor = np.array([floor])
        # the typical size of a projection (what grad_scale is for one entry)
        self.grad_scale = np.array([scale])
        self._fx = fx

    def tol(self, i, numeric, err):
        return self._fx._tol(err, self.floor[0])


def _split(spec, lo, hi):
    """Split [lo, hi) at the leaf boundary nearest its middle, else in halves."""
    mid = (lo + hi) // 2
    bounds = [leaf.offset for leaf in spec.leaves if lo < leaf.offset < hi]
    if bounds:
        mid = min(bounds, key=lambda b: abs(b - (lo + hi) / 2))
    return (lo, mid), (mid, hi)


class _Signs:
    """K rows of n independent random signs, kept as the bits of 64-bit draws (n/8 bytes a row, not
    8n), each row unpacked to +-1 int8 when its probe runs.  Drawn at once from the generator, so a
    seed gives the same signs as ever (row k: bits k*n .. (k+1)*n of the draws)."""

    def __init__(self, rng, K, n):
        self.K, self.n = K, n
        words = rng.integers(0, 2**64 - 1, size=(K * n + 63) // 64, dtype=np.uint64, endpoint=True)
        self.bytes = words.view(np.uint8)

    def __len__(self):
        return self.K

    def row(self, k):
        """Row k as int8 +-1 (bit 0 -> +1, bit 1 -> -1): multiplies a float64 scale exactly."""
        start = k * self.n
        first = start // 8
        bits = np.unpackbits(self.bytes[first:(start + self.n + 7) // 8])[start - 8 * first:start - 8 * first + self.n]
        signs = bits.view(np.int8)
        signs *= -2
        signs += 1
        return signs


def _escape_of(v, T, K, rng):
    """P(all K Rademacher probes miss the discrepancy v), |s.v| <= T per probe, estimated by sampling."""
    v = v[np.abs(v) > 0]
    if v.size == 0:
        return 1.0
    if v.size == 1:
        return 0.0 if abs(v[0]) > T else 1.0
    s = rng.choice([-1.0, 1.0], size=(ESCAPE_DRAWS, v.size))
    miss = float(np.mean(np.abs(s @ v) <= T))
    return miss ** K


def probe_count(n_probes) -> int:
    """K from the ``n_probes`` argument (None: N_PROBES); GradcheckInputError unless a positive integer."""
    if n_probes is None:
        return N_PROBES
    if isinstance(n_probes, bool) or not isinstance(n_probes, (int, np.integer)) or n_probes < 1:
        raise GradcheckInputError(f"n_probes must be a positive integer (random directions of fast mode); "
                                  f"got {n_probes!r}")
    return int(n_probes)


def check_fast(problem, n_probes: int | None = None):
    """Fast-mode check of a prepared Problem; returns a GradcheckResult (mode="fast")."""
    K = probe_count(n_probes)
    judge = Judge(problem)
    base_msgs = problem.check_base()
    if any(m.startswith("fun is nondeterministic") for m in base_msgs):
        res = nondeterministic_result(problem, judge, base_msgs)
        res.mode = "fast"
        return res
    problem.messages.extend(base_msgs)
    n = problem.n
    rng = np.random.default_rng([problem.seed, 0xFA57])
    signs = _Signs(rng, K, n)
    probes = None
    if problem.method != "complex" and getattr(problem, "sigma", None) is None:
        # First round with the least noise f can have (its roundoff at f0): a tolerance built on it is
        # the tightest, so probes that agree at their first step are a valid pass and, when all do,
        # the 8 evaluations of the noise measurement are saved.  At the first probe that does not
        # agree the noise is measured; the round goes on with it unless it moves the steps.
        fx = _Fast(problem, judge, K, assume_least_noise=True)
        probes = fx.run(signs)
    for _ in range(2):  # a round with the measured noise; one more if it reveals a staircase
        if probes is None:
            fx = _Fast(problem, judge, K)
            probes = fx.run(signs)
    if fx.complex:
        _check_complex_analytic(fx, signs.row(0), probes[0])

    numeric = np.full(n, np.nan)
    err = np.full(n, np.nan)
    verdict = np.zeros(n, dtype=np.int8)
    reasons: dict[int, str] = {}
    checked = np.zeros(n, dtype=bool)

    bad = sorted([k for k, pr in enumerate(probes) if pr.verdict != PASS], key=lambda k: -probes[k].ratio)
    block_probes = 0
    evals_before = problem.ev.n_evals
    # O(log n) block probes per bad entry, a few evaluations each; far below full mode's 2n for large n
    budget = LOCAL_BUDGET * (math.ceil(math.log2(max(n, 2))) + 4)
    for k in bad[:3]:
        if int((verdict[checked] == FAIL).sum()) >= MAX_FOUND:
            break
        s = signs.row(k)
        # depth first: expand the smallest disagreeing block (worst ratio among equals), so that a
        # spread bug reaches entries in log2(n) steps instead of probing the whole top of the tree
        heap = [(n, -probes[k].ratio, 0, n)]
        while heap:
            if int((verdict[checked] == FAIL).sum()) >= MAX_FOUND:
                break
            if problem.ev.n_evals - evals_before > budget:
                problem.messages.append("fast mode: the localisation budget was spent before every disagreeing "
                                        "block was resolved; run mode='full' for the complete picture")
                heap = []
                break
            _, _, lo, hi = heapq.heappop(heap)
            if hi - lo <= 2 * BLOCK:
                todo = [i for i in range(lo, hi) if not checked[i]]
                fx.check_entries(todo, numeric, err, verdict, reasons)
                checked[todo] = True
                continue
            for blo, bhi in _split(problem.spec, lo, hi):
                if bhi <= blo:
                    continue
                bp = fx.probe(blo, bhi, s)
                block_probes += 1
                if bp.verdict != PASS:
                    heapq.heappush(heap, (bhi - blo, -bp.ratio, blo, bhi))

    where = problem.ev.modified_leaf()
    if where:
        raise GradcheckInputError(f"fun modified its input in place (leaf {where!r}); it must not change params")

    n_fail = int((verdict[checked] == FAIL).sum())
    n_inc = int((verdict[checked] == INCONCLUSIVE).sum())
    worst_probe = max(probes, key=lambda pr: pr.ratio)
    status = None
    if not n_fail and not n_inc and bad:
        status = "inconclusive"
    T = float(statistics.median([pr.tol for pr in probes]))
    probe_word = "complex-step" if fx.complex else "central-difference"
    problem.ev.release_work()  # no more directions: the work vector's memory goes to what follows
    w = fx.scale * problem.analytic
    typical = float(np.sqrt(np.mean(np.square(w, out=w))))
    del w
    under = f_underflows(problem, fx.sigma)
    blind = None if (bad or judge.explicit) else _single_entries_unseen(problem, fx.scale, T, under)
    infinite = not bad and not math.isfinite(T)  # a probe's projection overflowed: no probe saw anything
    if blind is not None or infinite:
        status = "inconclusive"
    raised = (f", raised for {fx.n_raised} entries too small for the probes to see" if fx.n_raised else "")
    noise = (", noise taken as f's roundoff at params (the least it can be, so the tightest tolerance; it is "
             "measured only when a probe disagrees)" if fx.assumed_noise else "")
    msg = (f"fast mode: {len(probes)} of {K} random +-1 directions probed (scaled by each entry's magnitude"
           f"{raised}; {probe_word} directional derivatives{noise}); worst |projection - estimate|/tolerance = "
           f"{worst_probe.ratio:.3g}; {len(bad)} disagreed")
    if not bad:
        msg += (f". A single wrong entry j is caught with certainty when L_j*|error_j| > {T:.3g}"
                + (f" ({T / typical:.2g} of the typical L_j*|gradient_j|)" if typical > 0 else "")
                + f"; any error with one such entry escapes all {K} probes with probability <= 2^-{K}")
    if bad:
        msg += f", localised with {block_probes} block probes and {int(checked.sum())} entry-wise checks"
    problem.messages.append(msg)
    if blind is not None and under:
        problem.messages.append(
            f"fast mode: fun underflows: its values near params are below the smallest normal number of its dtype "
            f"({under:.3g}), 0 or subnormal, so no probe resolves a change of it; the gradient is not verified "
            f"(detection threshold {T:.3g}). Rescale fun (e.g. a log-likelihood instead of a likelihood)")
    elif blind is not None:
        problem.messages.append(
            f"fast mode: the probes cannot see an error in one typical entry: flipping the sign of an entry of "
            f"typical size moves a probe by 2 x {blind:.3g}, less than the detection threshold {T:.3g} (f's noise "
            f"and the analytic side's rounding allowance, projected on the probe{low_precision_note(problem)}). "
            f"Only errors spread over many entries were verified. Run mode='full' to judge every entry")
    elif infinite:
        problem.messages.append(
            "fast mode: the probes cannot see any error: their tolerance is not finite (the projections of the "
            "gradient on the probe directions overflow near the float range's end), so they verified nothing. "
            "Run mode='full'")
    elif status == "inconclusive":
        problem.messages.append(
            f"fast mode: {len(bad)} random-direction probe(s) disagreed (worst by {worst_probe.ratio:.3g}x its "
            f"tolerance{': ' + worst_probe.reason if worst_probe.reason else ''}) but no single entry could be "
            f"confirmed; the error may be spread thinly over many entries. Run mode='full'")
    res = assemble(problem, judge, numeric, err, verdict, reasons, mode="fast", checked=checked, status=status)
    if worst_probe.ratio > res.max_ratio and math.isfinite(worst_probe.ratio):
        res.max_ratio = float(worst_probe.ratio)
    if n_fail:
        m = checked & (verdict == FAIL)
        v = fx.scale[m] * (problem.analytic[m] - numeric[m])
        res.escape_probability = _escape_of(v, T, K, np.random.default_rng([problem.seed, 0xE5C]))
    else:
        res.escape_probability = 2.0 ** (-K)
    res.probes = [{"ratio": float(pr.ratio), "projection": float(pr.P), "estimate": float(pr.D),
                   "tolerance": float(pr.tol), "verdict": int(pr.verdict)} for pr in probes]
    res.detection_threshold = T
    return res


def _single_entries_unseen(problem, scale, T, under=0.0):
    """The typical visible size L_j*|a_j| of the entries above the analytic floor, when a sign flip of
    such an entry (a change of twice that) stays below the probes' threshold T; None otherwise.

    The fast-mode counterpart of full mode's unresolved entries: a pass that a typical wrong entry
    would also get verified nothing about single entries (float16/bfloat16 gradients, whose rounding
    allowance projected on a probe grows like sqrt(n) times the gradient's own size).  Entries at or
    below the floor are zero to their dtype's precision and do not count, so a check at an optimum
    still passes -- unless f underflows (``under``): then a nonzero gradient below its dtype's floor is
    no more verified than one above it (entries.f_underflows, as in full mode)."""
    a = problem.analytic
    # a floor not below a tenth of the gradient's typical size verifies no entry as ~0 (verdict.ZETA)
    zero_unverified = ((a != 0) & (problem.floor >= ZETA * typical_magnitude(a))
                       & (problem.floor >= ZETA * problem.grad_scale))
    above = (np.abs(a) > problem.floor) | ((a != 0) if under else zero_unverified)
    if not above.any():
        return None
    v = scale[above]
    v *= problem.analytic[above]
    typical = norm2(v) / math.sqrt(v.size)
    return typical if 2.0 * typical <= T else None


def _check_complex_analytic(fx, s, pr):
    """The complex-step probe must match real central differences along the same direction."""
    p = fx.p
    d = s * p.L
    ests = []
    for step in (1e-4, 2.5e-5):
        fp = np.real(p.ev.at_vector(p.x0 + step * d))
        fm = np.real(p.ev.at_vector(p.x0 - step * d))
        ests.append((fp - fm) / (2 * step))
    rich = ests[1] + (ests[1] - ests[0]) / 15.0
    sigma = float(np.finfo(np.float64).eps) * abs(fx.f0)
    e = abs(ests[1] - ests[0]) + 3 * sigma / 2.5e-5 * 10
    scale = float(np.abs(d) @ np.abs(p.analytic))
    if abs(pr.D - rich) > SAFETY * e + 1e-6 * scale:
        raise GradcheckInputError(
            f"method='complex' needs complex-analytic code: along a random direction the complex step gives "
            f"{pr.D:.6g} but real central differences give {rich:.6g}. fun probably uses abs, max, comparisons, "
            f"conj or .real on the perturbed values; use method='central'")
