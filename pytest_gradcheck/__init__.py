"""pytest-gradcheck: check hand-written gradients against finite differences."""

from .errors import GradcheckError, GradcheckInputError
from .numerics.result import GradcheckResult
from .numerics.check import check_gradient

__all__ = [
    "check_gradient",
    "GradcheckResult",
    "GradcheckError",
    "GradcheckInputError",
]
__version__ = "0.1.0"
