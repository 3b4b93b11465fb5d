"""GradcheckResult: the verdicts of one check, as numbers, JSON and text.

Everything the plugin and the reporters show is derived from ``to_dict()``,
which holds only JSON-safe values (it crosses process boundaries under
pytest-xdist).  The full per-entry arrays stay on the Python object.

Layer: numerics, bottom.  Imports errors only; the reporters read its
``to_dict()`` output, never this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import GradcheckError

#: Histogram of per-entry ``ratio = |analytic - numeric| / tolerance`` on a
#: log10 scale.  Fixed edges so that histograms of different checks add up:
#: counts[0] is ratio < 10**HIST_LOG10_EDGES[0] (exact agreement included),
#: counts[-1] is ratio >= 10**HIST_LOG10_EDGES[-1].  The tolerance is ratio 1,
#: i.e. the edge at log10 = 0.
HIST_LOG10_EDGES = list(range(-8, 5))

STATUSES = ("pass", "fail", "inconclusive")
SCHEMA_VERSION = 1
MAX_WORST = 10
MAX_GRID = 32


def ratio_histogram(ratios: np.ndarray) -> dict:
    """Counts of ``ratios`` in the fixed log10 bins (NaN ratios are skipped)."""
    r = np.asarray(ratios, dtype=float).ravel()
    r = r[~np.isnan(r)]
    idx = _HIST_EDGES.searchsorted(r, side="right")
    counts = np.bincount(idx, minlength=len(_HIST_EDGES) + 1)
    return {"log10_edges": list(HIST_LOG10_EDGES), "counts": counts.tolist()}


#: the bins' edges, built once: rebuilding them and converting the counts one by one were most
#: of this function's ~20 us, paid by every check
_HIST_EDGES = np.array([10.0**e for e in HIST_LOG10_EDGES])


def _finite(x) -> float | None:
    """A float for JSON: None for NaN, +-1e308 for infinities."""
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return math.copysign(1e308, x)
    return x


@dataclass
class EntryReport:
    """One entry of one leaf: the two sides, the error estimate and the verdict."""

    leaf: str
    index: tuple
    analytic: float
    numeric: float
    error_estimate: float
    tolerance: float
    verdict: str
    reason: str = ""

    @property
    def abs_error(self) -> float:
        return abs(self.analytic - self.numeric)

    @property
    def rel_error(self) -> float:
        denom = max(abs(self.analytic), abs(self.numeric))
        return self.abs_error / denom if denom > 0 else 0.0

    @property
    def ratio(self) -> float:
        if self.tolerance > 0:
            return self.abs_error / self.tolerance
        return 0.0 if self.abs_error == 0 else math.inf

    @property
    def where(self) -> str:
        idx = "" if self.index == () else "[" + ", ".join(str(i) for i in self.index) + "]"
        return f"{self.leaf}{idx}"

    def to_dict(self) -> dict:
        return {
            "leaf": self.leaf,
            "index": [int(i) for i in self.index],
            "analytic": _finite(self.analytic),
            "numeric": _finite(self.numeric),
            "abs_error": _finite(self.abs_error),
            "rel_error": _finite(self.rel_error),
            "error_estimate": _finite(self.error_estimate),
            "tolerance": _finite(self.tolerance),
            "ratio": _finite(self.ratio),
            "verdict": self.verdict,
            "reason": self.reason,
        }


@dataclass
class LeafSummary:
    """Per-leaf figures; ``ratio_grid`` is a coarse 2-D map for heatmaps."""

    path: str
    shape: tuple
    dtype: str
    max_ratio: float
    counts: dict
    ratio_grid: list | None = None
    grad_dtype: str | None = None  # the analytic gradient's dtype where it is known

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "shape": [int(s) for s in self.shape],
            "dtype": self.dtype,
            "grad_dtype": self.grad_dtype,
            "max_ratio": _finite(self.max_ratio),
            "counts": dict(self.counts),
            "ratio_grid": self.ratio_grid,
        }


def ratio_grid(ratios: np.ndarray, shape: tuple) -> list | None:
    """Max-pooled ``log10(ratio)`` map of a 2-D leaf, at most MAX_GRID x MAX_GRID.

    None for leaves that are not 2-D.  Cells hold log10 of the largest ratio in
    the block (None where every ratio is 0 or NaN).
    """
    if len(shape) != 2 or ratios.size == 0:
        return None
    r = np.nan_to_num(np.asarray(ratios, dtype=float).reshape(shape), nan=0.0)
    # the blocks of np.array_split, max-pooled in two reduceat passes (one np.ix_ per cell cost
    # ~32 ms per check on 2-D leaves)
    pooled = np.maximum.reduceat(np.maximum.reduceat(r, _split_starts(shape[0]), axis=0), _split_starts(shape[1]), axis=1)
    grid = []
    for line in pooled.tolist():
        grid.append([round(math.log10(m), 3) if m > 0 and math.isfinite(m) else (None if m == 0 else 308.0)
                     for m in line])
    return grid


def _split_starts(size: int) -> np.ndarray:
    """First index of each of the min(size, MAX_GRID) near-equal blocks np.array_split makes."""
    k = min(size, MAX_GRID)
    q, extra = divmod(size, k)
    lengths = np.full(k, q)
    lengths[:extra] += 1  # array_split gives the first size % k blocks one more
    return np.concatenate(([0], np.cumsum(lengths)[:-1]))


@dataclass
class GradcheckResult:
    """The outcome of one check.

    ``status`` is "pass", "fail" (a disagreement larger than floating point can
    explain was confirmed) or "inconclusive" (some entries could not be judged,
    e.g. a kink inside every usable step; the rest agree).  ``passed`` is False
    only for "fail".
    """

    status: str
    kind: str = "gradient"
    mode: str = "full"
    method: str = "central"
    seed: int = 0
    n_params: int = 0
    n_checked: int = 0
    #: entries of params that are not finite (-inf masks): held fixed, not checked, not in n_checked
    n_held: int = 0
    n_evals: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    max_ratio: float = 0.0
    tolerance: dict = field(default_factory=dict)
    counts: dict = field(default_factory=lambda: {s: 0 for s in STATUSES})
    histogram: dict = field(default_factory=lambda: ratio_histogram(np.zeros(0)))
    worst: list = field(default_factory=list)
    leaves: list = field(default_factory=list)
    diagnosis: dict | None = None
    messages: list = field(default_factory=list)
    duration_s: float = 0.0
    escape_probability: float | None = None
    #: full per-entry arrays (not serialised): analytic, numeric, error_estimate,
    #: tolerance, ratio, verdict codes (0 pass, 1 fail, 2 inconclusive)
    entries: dict | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return self.status != "fail"

    def __bool__(self) -> bool:  # `assert check_gradient(...)` reads naturally
        return self.passed

    def to_dict(self) -> dict:
        """JSON-safe summary (schema version ``SCHEMA_VERSION``)."""
        return {
            "version": SCHEMA_VERSION,
            "status": self.status,
            "passed": self.passed,
            "kind": self.kind,
            "mode": self.mode,
            "method": self.method,
            "seed": int(self.seed),
            "n_params": int(self.n_params),
            "n_checked": int(self.n_checked),
            "n_held": int(self.n_held),
            "n_evals": int(self.n_evals),
            "max_abs_error": _finite(self.max_abs_error),
            "max_rel_error": _finite(self.max_rel_error),
            "max_ratio": _finite(self.max_ratio),
            "tolerance": {k: (_finite(v) if isinstance(v, float) else v) for k, v in self.tolerance.items()},
            "counts": dict(self.counts),
            "histogram": self.histogram,
            "worst": [e.to_dict() for e in self.worst],
            "leaves": [leaf.to_dict() for leaf in self.leaves],
            "diagnosis": self.diagnosis,
            "messages": list(self.messages),
            "duration_s": _finite(self.duration_s),
            "escape_probability": _finite(self.escape_probability),
        }

    def raise_for_status(self) -> "GradcheckResult":
        """Raise :class:`GradcheckError` carrying the report when the check failed."""
        __tracebackhide__ = True
        if self.status == "fail":
            raise GradcheckError(str(self), result=self)
        return self

    def __str__(self) -> str:
        return format_result(self)


def _fmt(x: float) -> str:
    return f"{x: .6e}" if x is not None and math.isfinite(x) else f"{x!s:>14}"


#: the headline of a check that is inconclusive as a whole, with no entry inconclusive on its own
#: (fast mode: its probes, not its entries, left it open), by the diagnosis' cause.  The causes and
#: the words each must show are numerics/causes.py's (INCONCLUSIVE_CAUSES, CAUSE_WORDS; this module
#: sits beside it and reads the cause as a string: tests/test_headline.py keeps the two in step).
CHECK_WIDE = {
    "kink": "a probe met a kink of fun",
    "several_kinks": "a probe crossed several kinks at once",
    "underflow": "fun's values underflow (0 or subnormal near params), so the probes resolve no change of it",
    "unresolved": "the probes are too coarse to resolve an error in one typical entry (f's noise and the "
                  "analytic side's rounding allowance swamp it)",
    "staircase": "fun is piecewise constant at this scale",
    "nonfinite": "fun is not finite at the probes' points",
    "unsettled": "the probes' finite-difference estimates did not settle",
    "spread": "a random-direction probe disagreed, but no single entry could be confirmed (the error may be "
              "spread thinly over many entries)",
    "discontinuity": "fun jumps within the probes' steps",
}


def _headline(r: GradcheckResult, what: str) -> str:
    n_bad = r.counts.get("fail", 0)
    n_inc = r.counts.get("inconclusive", 0)
    if r.diagnosis and r.diagnosis.get("kind") == "nondeterministic":
        return f"{what}: fun is nondeterministic, so no entry could be judged"
    if r.status == "fail":
        return f"{what}: {n_bad} of {r.n_checked} entries disagree"
    if r.status == "inconclusive" and n_inc:
        return f"{what}: {n_inc} of {r.n_checked} entries could not be judged, the rest agree"
    if r.status == "inconclusive":  # the check as a whole: say why, and what the entries did
        why = CHECK_WIDE.get((r.diagnosis or {}).get("cause"), "the probes could not settle the check")
        done = (f"the {r.n_checked} entries checked one by one agree" if r.n_checked else
                "no entry was checked on its own")
        return f"{what}: {why}; {done}"
    if r.mode == "fast" and not r.n_checked:
        return f"{what}: every random-direction probe agrees, so no entry needed a check of its own"
    return f"{what}: all {r.n_checked} entries agree"


def format_result(r: GradcheckResult) -> str:
    """The readable report: headline, rule, worst entries, diagnosis, reproduction."""
    word = {"pass": "passed", "fail": "FAILED", "inconclusive": "inconclusive"}[r.status]
    head = _headline(r, f"{r.kind} check {word}")
    lines = []
    lines.append(f"{head} (method={r.method}, mode={r.mode}, {r.n_evals} evaluations of fun)")
    lines.append(f"  worst error/tolerance ratio {r.max_ratio:.3g}; max abs error {r.max_abs_error:.3g}, "
                 f"max rel error {r.max_rel_error:.3g}")
    tol = r.tolerance
    if tol.get("rule") == "explicit":
        lines.append(f"  rule: |analytic - numeric| <= atol + rtol*|numeric| with atol={tol.get('atol')}, rtol={tol.get('rtol')}")
    elif tol:
        lines.append(f"  rule: |analytic - numeric| <= {tol.get('safety')} x (finite-difference error estimate) "
                     f"+ analytic-precision floor (see docs/verdict.md in pytest-gradcheck's documentation)")
    if r.escape_probability is not None:
        lines.append(f"  fast mode: a discrepancy of the reported size escapes with probability <= {r.escape_probability:.2g}")
    for m in r.messages:
        lines.append(f"  note: {m}")
    shown = [e for e in r.worst if e.verdict != "pass" or r.status == "pass"][:MAX_WORST]
    if shown:
        lines.append("  entries (worst first; analytic = your gradient, numeric = finite differences):")
        lines.append(f"    {'where':<22} {'analytic':>14} {'numeric':>14} {'|a-n|':>10} {'tolerance':>10} {'ratio':>9}  verdict")
        for e in shown:
            lines.append(f"    {e.where:<22} {_fmt(e.analytic)} {_fmt(e.numeric)} {e.abs_error:>10.3g} "
                         f"{e.tolerance:>10.3g} {e.ratio:>9.3g}  {e.verdict}" + (f" ({e.reason})" if e.reason else ""))
    if r.diagnosis and r.diagnosis.get("summary"):
        lines.append("  diagnosis: " + r.diagnosis["summary"])
    if r.status == "fail":
        lines.append(f"  reproduce: same call with seed={r.seed} (results are deterministic)")
    return "\n".join(lines)
