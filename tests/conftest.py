"""Fixtures shared by every test folder."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads far more often than the default 5 ms, so races get a chance to show."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)
