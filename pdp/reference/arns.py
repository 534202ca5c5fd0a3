"""Can a policy's Resource pattern name a resource of a given ARN format?

A format is the Service Authorization Reference's (`arn:${Partition}:s3:::${BucketName}/
${ObjectName}`): each `${...}` stands for one or more characters, never a colon in the first
five segments (partition, service, region, account). A Resource pattern has `*` (any run) and
`?` (any one character); a policy variable (`${aws:username}`) is unknown until a request, so it
stands for any run too. The question is whether some ARN matches both: the emptiness of the
intersection of two such patterns, decided by a search over pairs of positions (at most
len(pattern) x len(format) states, each visited once; no backtracking blow-up).

Deliberately generous: a pattern's star may cross `:` here even where the resource matcher keeps
it in one segment, so "fits no format" is sure (a finding is never wrong about a pattern that
could match) while an odd pattern may be let through.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["fits_format"]

_VARIABLE = re.compile(r"\$\{[^}]*\}")
_STAR, _ONE = "\x00*", "\x00?"  # any run / any one character (not characters of an ARN)
_SEG_STAR = "\x00s"  # a format's variable in one of the first five segments: never a colon
MAX_PATTERN = 4096  # longer (never in practice: the policy is size-bounded) counts as fitting


def _atoms(text: str, *, template: bool) -> tuple[str, ...]:
    """Characters, `_ONE` and the stars, runs of one star kind collapsed."""
    out: list[str] = []
    pos = 0
    for m in _VARIABLE.finditer(text):
        out.extend(_plain(text[pos : m.start()], template=template))
        if template:
            in_head = text.count(":", 0, m.start()) < 5
            out.extend((_ONE, _SEG_STAR if in_head else _STAR))
        else:
            out.append(_STAR)
        pos = m.end()
    out.extend(_plain(text[pos:], template=template))
    collapsed: list[str] = []
    for atom in out:
        if atom in (_STAR, _SEG_STAR) and collapsed and collapsed[-1] == atom:
            continue
        collapsed.append(atom)
    return tuple(collapsed)


def _plain(text: str, *, template: bool) -> list[str]:
    if template:
        return list(text)
    return [_STAR if c == "*" else _ONE if c == "?" else c for c in text]


@lru_cache(maxsize=16384)
def fits_format(pattern: str, arn_format: str) -> bool:
    """True when some ARN matches both the Resource pattern and the ARN format."""
    if len(pattern) > MAX_PATTERN:
        return True
    p = _atoms(pattern, template=False)
    q = _atoms(arn_format, template=True)
    n, m = len(p), len(q)
    seen: set[tuple[int, int]] = set()
    stack = [(0, 0)]
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == n and j == m:
            return True
        a = p[i] if i < n else None
        b = q[j] if j < m else None
        b_star = b in (_STAR, _SEG_STAR)
        if a == _STAR:
            stack.append((i + 1, j))  # the star matches nothing more
            if b is not None and not b_star:
                stack.append((i, j + 1))  # the star takes the character b stands for
        if b_star:
            stack.append((i, j + 1))
            if a is not None and a != _STAR and not (b == _SEG_STAR and a == ":"):
                stack.append((i + 1, j))
        if a is not None and b is not None and a != _STAR and not b_star:
            if (a == _ONE and b != ":") or (b == _ONE and a != ":") or a == b:
                stack.append((i + 1, j + 1))
    return False
