"""Exceptions raised by pytest-gradcheck.

Layer: bottom.  Imports nothing of the package; every layer may import it.
"""


class GradcheckError(AssertionError):
    """A gradient check failed, or its input was unusable.

    Subclasses ``AssertionError`` so that pytest shows it as a plain test
    failure with the readable report as its message. ``result`` holds the
    :class:`~pytest_gradcheck.GradcheckResult` when the error comes from a
    completed check (``raise_for_status``), else ``None``.
    """

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result


class GradcheckInputError(GradcheckError, ValueError):
    """The arguments of a check are unusable (shape mismatch, NaN, wrong type...).

    Also a ``ValueError`` so callers can catch bad input the usual way.
    """


class GradcheckUserCodeError(GradcheckInputError):
    """The user's code (``fun``, ``grad``, a Jacobian or a Function's forward/backward)
    raised during a check; the original exception is ``__cause__``.

    A :class:`GradcheckInputError` too, so that code catching bad input keeps
    working; reports type it as an error of the user's code, not as bad input.
    """
