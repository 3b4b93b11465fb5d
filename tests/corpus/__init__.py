"""A corpus of hand-written gradients of real models, correct and buggy.

Each entry is a :class:`Case`: a scalar loss ``fun(params)``, a hand-written
gradient ``grad(params)`` (numpy, backprop by hand) and a ``params()`` factory
that returns fresh parameters from ``np.random.default_rng(<fixed seed>)``.

* ``CORRECT``: gradients that are right.  ``kink=True`` marks the deliberate
  near-kink cases (a ReLU pre-activation within ~1e-8 of zero), where
  "inconclusive" is an acceptable verdict; every other correct case must pass.
* ``BUGS``: realistic mistakes, each a wrong gradient of one of the correct
  models.  ``bug_leaves`` names the leaves (paths as the checker spells them)
  where the worst entry must lie when the bug is local (empty: not local);
  ``gross`` marks bugs of at least ~1% in some entry, which every scheme must
  catch; ``subtle`` ones (1e-3 relative) are only required to fail with the
  default and the higher-order schemes.
* ``inconclusive_ok=True``: a correct gradient at a point where the analytic
  side is itself mostly rounding error (float32 at an exact optimum), so
  "inconclusive" is acceptable; "fail" is not.
* ``analytic=True``: the model is complex-analytic code (no abs, max,
  comparisons or conjugation on the differentiated path), so the complex step
  applies.

The corpus is used by tests/test_corpus.py and benchmarks/bench_core.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Case:
    name: str
    fun: Callable[[Any], Any]
    grad: Callable[[Any], Any]
    make_params: Callable[[], Any]
    kind: str = "correct"            # "correct" | "bug"
    model: str = ""                  # the correct model a bug belongs to
    bug_leaves: tuple = ()           # leaf paths the worst entry must be in (bugs)
    gross: bool = True               # bug of >= ~1% somewhere (bugs)
    analytic: bool = False           # complex-step safe code
    kink: bool = False               # deliberate near-kink case (correct)
    inconclusive_ok: bool = False    # correct case where "inconclusive" is acceptable
    tags: frozenset = field(default_factory=frozenset)
    note: str = ""

    def params(self):
        return self.make_params()

    def __repr__(self):  # short ids in pytest output
        return f"Case({self.name})"


from . import models as _models  # noqa: E402  (registers the models)
from . import bugs as _bugs  # noqa: E402

CORRECT: list[Case] = list(_models.CORRECT)
BUGS: list[Case] = list(_bugs.BUGS)
ALL: list[Case] = CORRECT + BUGS
BY_NAME: dict[str, Case] = {c.name: c for c in ALL}
assert len(BY_NAME) == len(ALL), "duplicate case names"


def get(name: str) -> Case:
    return BY_NAME[name]
