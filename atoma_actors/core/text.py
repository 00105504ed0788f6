"""Text search primitives: tokenizing and bounded Levenshtein distance.

Tokens are the lower-cased runs of Unicode letters and digits, kept when 3 to 32 characters
long. Used by the `text` filter and the token index; they must tokenize identically.
Must not import anything from atoma_actors.
"""

from __future__ import annotations

import re

__all__ = ["MAX_TOKEN", "MIN_TOKEN", "tokenize", "within_distance"]

MIN_TOKEN = 3
MAX_TOKEN = 32

# `[^\W_]` is "a word character that is not the underscore": Unicode letters and digits.
_RUN = re.compile(r"[^\W_]+")


def tokenize(text: object) -> list[str]:
    """The tokens of `text` in order (duplicates kept); a non-string has none."""
    if not isinstance(text, str):
        return []
    return [t for t in _RUN.findall(text.lower()) if MIN_TOKEN <= len(t) <= MAX_TOKEN]


def within_distance(a: str, b: str, limit: int) -> bool:
    """Whether the Levenshtein distance of `a` and `b` is at most `limit`."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > limit:
        return False
    if limit == 0:
        return False
    if la > lb:
        a, b, la, lb = b, a, lb, la
    prev = list(range(lb + 1))
    for i in range(1, la + 1):
        ca = a[i - 1]
        cur = [i] + [0] * lb
        row_min = i
        for j in range(1, lb + 1):
            cost = 0 if ca == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            cur[j] = v
            row_min = min(row_min, v)
        if row_min > limit:
            return False
        prev = cur
    return prev[lb] <= limit
