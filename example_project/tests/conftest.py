"""Shared fixtures of tinynet's tests."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fixed-seed generator: every test sees the same numbers on every run."""
    return np.random.default_rng(1234)
