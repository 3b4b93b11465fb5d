"""Finite-difference schemes and their error orders.

A scheme estimates f'(x) as  D(h) = sum_j w_j f(x + o_j h) / h.

Error model (Taylor's theorem; f evaluated with absolute noise sigma):
    truncation  ~ C_p h^p |f^(p+1)|       (p = the scheme's order)
    roundoff    ~ sqrt(sum_j w_j^2) sigma / h   (its standard deviation)
The two balance at h* ~ (sigma/|f^(p+1)|)^(1/(p+1)); for a function whose
derivatives scale like |f|/L^k and sigma = eps|f| that is h* ~ eps^(1/(p+1)) L.
Halving the step r-fold shrinks truncation r^p-fold, which is what Richardson
extrapolation uses:  N = D(h/r) + (D(h/r) - D(h)) / (r^p - 1).

Layer: numerics, bottom.  Imports nothing of the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Scheme:
    name: str
    offsets: tuple  # o_j, excluding a zero offset unless its weight is nonzero
    weights: tuple  # w_j for h = 1
    order: int      # p: truncation error ~ h^p
    uses_center: bool  # needs f(x) (forward/backward)

    # computed once per scheme (cached_property writes the instance's __dict__, which a frozen
    # dataclass allows): stage A and every refinement chain read them

    @cached_property
    def abs_weight_sum(self) -> float:
        """sum |w_j|: a worst-case bound on the roundoff of D(h), in units of sigma / h."""
        return float(np.sum(np.abs(self.weights)))

    @cached_property
    def weight_norm(self) -> float:
        """sqrt(sum w_j^2): the roundoff of D(h) has standard deviation weight_norm * sigma / h
        when the f(x + o_j h) carry independent noise of standard deviation sigma."""
        return float(np.sqrt(np.sum(np.square(self.weights))))

    def base_step(self, eps: float) -> float:
        """Step (in units of the entry's scale L) that balances the error model."""
        return eps ** (1.0 / (self.order + 1))


SCHEMES = {
    "forward": Scheme("forward", (0.0, 1.0), (-1.0, 1.0), 1, True),
    "backward": Scheme("backward", (-1.0, 0.0), (-1.0, 1.0), 1, True),
    "central": Scheme("central", (-1.0, 1.0), (-0.5, 0.5), 2, False),
    "central4": Scheme("central4", (-2.0, -1.0, 1.0, 2.0), (1 / 12, -8 / 12, 8 / 12, -1 / 12), 4, False),
}

#: complex step: f'(x) = Im f(x + i h) / h + O(h^2); no subtraction, so no
#: cancellation: any tiny h works and the error is ~eps|f'|.  Needs code that is
#: complex-analytic along the path (no abs, max, comparisons, conj, .real).
COMPLEX_STEP = 1e-20

METHODS = tuple(SCHEMES) + ("complex",)
