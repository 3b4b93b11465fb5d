"""Text histograms of per-entry error/tolerance ratios (plain ASCII).

Input is the ``histogram`` dict of ``GradcheckResult.to_dict()``: fixed log10
edges (-8 ... 4) and counts one longer (counts[0]: ratio < 1e-8, counts[-1]:
ratio >= 1e4).  The tolerance is ratio 1 (the edge at log10 = 0); a line marks
it.

Layer: reporting, report data.  Imports nothing of the package: it reads plain dicts.
"""

from __future__ import annotations

TOLERANCE_LINE = "tolerance (ratio 1)"


def add_histograms(histograms) -> dict | None:
    """Sum histograms with the same edges; None when there is none."""
    total = None
    for hist in histograms:
        if not hist or not hist.get("counts"):
            continue
        if total is None:
            total = {"log10_edges": list(hist["log10_edges"]), "counts": [0] * len(hist["counts"])}
        if list(hist["log10_edges"]) != total["log10_edges"]:
            continue  # a different schema; never mix bins
        total["counts"] = [a + int(b) for a, b in zip(total["counts"], hist["counts"])]
    return total


def _label(edges: list, i: int) -> str:
    if i == 0:
        return f"< 1e{edges[0]:+03d}"
    if i == len(edges):
        return f">= 1e{edges[-1]:+03d}"
    return f"1e{edges[i - 1]:+03d} .. 1e{edges[i]:+03d}"


def render(hist: dict, width: int = 40, trim: bool = False, indent: str = "  ") -> list[str]:
    """Lines of a horizontal bar chart, one row per bin, with the tolerance line.

    Bars are linear in the count (at least one ``#`` for a non-empty bin).
    ``trim`` drops empty bins at both ends, keeping the bins next to the
    tolerance line.
    """
    edges = list(hist["log10_edges"])
    counts = [int(c) for c in hist["counts"]]
    n_bins = len(counts)
    tol_index = edges.index(0) + 1 if 0 in edges else None  # first bin with ratio >= 1
    lo, hi = 0, n_bins - 1
    if trim:
        nonzero = [i for i, c in enumerate(counts) if c]
        if nonzero:
            lo, hi = nonzero[0], nonzero[-1]
        if tol_index is not None:
            lo, hi = min(lo, tol_index - 1), max(hi, tol_index)
    peak = max(counts) or 1
    label_w = max(len(_label(edges, i)) for i in range(n_bins))
    count_w = max(len(str(c)) for c in counts)
    lines = []
    for i in range(lo, hi + 1):
        if i == tol_index:
            rule = f" {TOLERANCE_LINE} "
            left = (label_w + 2 + width + count_w - len(rule)) // 2
            right = label_w + 2 + width + 1 + count_w - len(rule) - left
            lines.append(indent + "-" * max(left, 3) + rule + "-" * max(right, 3))
        c = counts[i]
        bar = "#" * (max(1, round(width * c / peak)) if c else 0)
        lines.append(f"{indent}{_label(edges, i):>{label_w}} |{bar:<{width}} {c:>{count_w}}")
    return lines
