"""What a check already uses, so that advice never suggests it again (issue 20, C.12).

A report that says "try float64" to a float64 check, or blames float16 rounding in a float32
gradient, contradicts its own facts.  Every "try ..." and every dtype a message names is composed
here from the problem itself: the dtypes of params, of f's value and of the analytic gradient (read
from the rounding unit eps_a of each entry), and the method and mode that ran.

Layer: numerics, foundations.  Reads a Problem by its attributes; imports numpy only.
"""

from __future__ import annotations

import numpy as np

#: unit roundoff -> the name of the real floating dtype that has it
_BY_EPS = {float(np.finfo(np.float64).eps): "float64", float(np.finfo(np.float32).eps): "float32",
           float(np.finfo(np.float16).eps): "float16", 2.0 ** -7: "bfloat16"}
LOW = ("float16", "bfloat16")


def _name_of_eps(eps) -> str | None:
    return _BY_EPS.get(float(eps))


def gradient_dtypes(problem) -> set[str]:
    """The real dtypes of the analytic gradient's entries, as the problem measured their rounding unit."""
    eps_a = np.asarray(getattr(problem, "eps_a", ()), dtype=float).ravel()
    names = {_name_of_eps(e) for e in np.unique(eps_a)} if eps_a.size else set()
    return {n for n in names if n}


def dtypes(problem) -> set[str]:
    """Every real floating dtype in the problem: params' leaves, f's value and the analytic gradient
    (complex dtypes counted as their real parts' dtype)."""
    out = set(gradient_dtypes(problem))
    for leaf in getattr(getattr(problem, "spec", None), "leaves", ()):
        name = getattr(leaf, "dtype_name", "") or str(getattr(leaf, "dtype", ""))
        name = {"complex128": "float64", "complex64": "float32"}.get(name, name)
        if name in _BY_EPS.values():
            out.add(name)
    eps_out = getattr(getattr(problem, "ev", None), "eps_out", None)
    if eps_out and _name_of_eps(eps_out):
        out.add(_name_of_eps(eps_out))
    return out


def all_float64(problem) -> bool:
    """True when params, f's value and the gradient are all double precision already."""
    ds = dtypes(problem)
    return bool(ds) and ds == {"float64"}


def is_complex(problem) -> bool:
    return any(np.issubdtype(getattr(leaf, "dtype", np.float64), np.complexfloating)
               for leaf in getattr(getattr(problem, "spec", None), "leaves", ()))


def tries_for_unresolved(problem) -> str:
    """'method='complex' for complex-analytic code, a larger eps, or fun in float64' without what the
    check already uses (the complex step when it ran, float64 when everything is float64)."""
    tries = []
    if getattr(problem, "method", None) != "complex":
        tries.append("method='complex' for complex-analytic code")
    tries.append("a larger eps")
    if not all_float64(problem):
        tries.append("fun in float64")
    return tries[0] if len(tries) == 1 else ", ".join(tries[:-1]) + ", or " + tries[-1]


def low_precision_note(problem) -> str:
    """': the <dtype> gradient sets it high' when float16/bfloat16 rounding is present, else ''."""
    low = sorted(gradient_dtypes(problem) & set(LOW))
    return f": the {' and '.join(low)} gradient sets it high" if low else ""
