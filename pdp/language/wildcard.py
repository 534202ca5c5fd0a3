"""Wildcard (`*`, `?`) matching for IAM patterns, compiled once and linear in the subject.

A pattern is first cut into tokens (:func:`tokenize`): literal text, `STAR` and `QMARK`. Policy
variables are substituted into literal tokens before compiling, so a substituted value is never a
wildcard (that is what `${*}` and `${?}` are for).

Three dialects, after the IAM User Guide:

- **uniform** (actions, `StringLike`): `*` is any run of characters, `?` any one character.
- **resource** (`Resource`, `NotResource`): wildcards live inside colon-separated ARN segments; `?`
  and a `*` in the middle of a segment never match `:`, but "if the `*` wildcard is the last
  character of a resource ARN segment, it can expand to match beyond the colon boundaries"
  (reference_policies_elements_resource.html#reference_policies_elements_resource_wildcards).
- **arn** (`ArnEquals`, `ArnLike`): "each of the six colon-delimited components of the ARN is
  checked separately" (reference_policies_elements_condition_operators.html#Conditions_ARN).

Why linear: Python's `re` backtracks, and `a*a*a*a*b` over a long subject is exponential with a
naive translation. When every star of a pattern matches the same character class, greedy-leftmost
matching is exact: each middle chunk is matched at its leftmost occurrence and committed to, as
an atomic group `(?>.*?chunk)` would (chunks have fixed length and the next star absorbs whatever
lies between; :func:`_leftmost` spells it with possessive runs, which are faster), and only the
last chunk is anchored at the end. Patterns that mix segment-bound and colon-crossing
stars are matched segment by segment (:func:`_segment_matcher`), each segment with the same trick.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from operator import methodcaller

__all__ = [
    "QMARK",
    "STAR",
    "Matcher",
    "PatternSet",
    "compile_glob",
    "glob_matcher",
    "has_wildcard",
    "shared_pattern_set",
    "tokenize",
]

Matcher = Callable[[str], object]
"""A compiled pattern: called with the subject, truthy when it matches."""


class _Wild:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


STAR = _Wild("STAR")
QMARK = _Wild("QMARK")
Token = str | _Wild

_ANY = "."  # class of a colon-crossing star (compiled with re.DOTALL)
_SEG = "[^:]"  # class of a star or `?` that stays inside one ARN segment


@lru_cache(maxsize=65536)
def tokenize(pattern: str) -> tuple[Token, ...]:
    """Cut a raw pattern into literal runs, STAR and QMARK (runs of `*` collapse to one STAR)."""
    tokens: list[Token] = []
    literal: list[str] = []
    for ch in pattern:
        if ch == "*" or ch == "?":
            if literal:
                tokens.append("".join(literal))
                literal.clear()
            if ch == "*":
                if not tokens or tokens[-1] is not STAR:
                    tokens.append(STAR)
            else:
                tokens.append(QMARK)
        else:
            literal.append(ch)
    if literal:
        tokens.append("".join(literal))
    return tuple(tokens)


def normalize(tokens: Iterable[Token]) -> tuple[Token, ...]:
    """Merge adjacent literals and collapse STAR runs (after variable substitution)."""
    out: list[Token] = []
    for tok in tokens:
        if isinstance(tok, str):
            if not tok:
                continue
            if out and isinstance(out[-1], str):
                out[-1] = out[-1] + tok
                continue
        elif tok is STAR and out and out[-1] is STAR:
            continue
        out.append(tok)
    return tuple(out)


def has_wildcard(tokens: Sequence[Token]) -> bool:
    return any(t is STAR or t is QMARK for t in tokens)


def _always(_subject: str) -> bool:
    return True


def compile_glob(
    tokens: Sequence[Token], *, dialect: str = "uniform", ignore_case: bool = False
) -> Matcher:
    """Compile tokens into a matcher. With ignore_case the caller passes lower-cased subjects."""
    tokens = normalize(t.lower() if ignore_case and isinstance(t, str) else t for t in tokens)
    return _compile(tokens, dialect)


def glob_matcher(
    pattern: str, *, dialect: str = "uniform", ignore_case: bool = False
) -> Callable[[str], bool]:
    """A raw pattern (`s3:Get*`) as a predicate, matched as policies match it (for callers
    outside the language: pdp.reference expands action patterns with it). With ignore_case the
    subject is lower-cased here, so callers pass it as it is."""
    matcher = compile_glob(tokenize(pattern), dialect=dialect, ignore_case=ignore_case)
    if ignore_case:
        return lambda subject: bool(matcher(subject.lower()))
    return lambda subject: bool(matcher(subject))


@lru_cache(maxsize=65536)
def _compile(tokens: tuple[Token, ...], dialect: str) -> Matcher:
    """Matchers are pure functions of (tokens, dialect): equal patterns share one (store loads
    repeat the same patterns across thousands of policies)."""
    if dialect == "arn":
        return _arn_matcher(tokens)
    if tokens == (STAR,):
        return _always
    if not has_wildcard(tokens):
        return "".join(tokens).__eq__  # type: ignore[arg-type]
    if tokens[-1] is STAR and STAR not in tokens[:-1] and QMARK not in tokens:
        return methodcaller("startswith", "".join(tokens[:-1]))  # type: ignore[arg-type]
    if dialect == "uniform":
        return _regex(tokens, lambda _i: _ANY, _ANY).match
    if dialect != "resource":
        raise ValueError(f"unknown dialect {dialect!r}")
    classes = _star_classes(tokens)
    if len(set(classes.values())) == 1:
        return _regex(tokens, classes.__getitem__, _SEG).match
    last = len(tokens) - 1
    if tokens[-1] is STAR and all(c == _SEG for i, c in classes.items() if i != last):
        # Only the trailing star crosses colons: a prefix of the subject must match the rest.
        return _regex(tokens[:-1], classes.__getitem__, _SEG, anchor_end=False).match
    return _segment_matcher(tokens)


def _star_classes(tokens: Sequence[Token]) -> dict[int, str]:
    """Per STAR position: colon-crossing when it ends its segment (next is ':' or the end)."""
    classes = {}
    for i, tok in enumerate(tokens):
        if tok is STAR:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            ends_segment = nxt is None or (isinstance(nxt, str) and nxt.startswith(":"))
            classes[i] = _ANY if ends_segment else _SEG
    return classes


def _regex(
    tokens: Sequence[Token],
    star_class: Callable[[int], str],
    qmark_class: str,
    *,
    anchor_end: bool = True,
) -> re.Pattern[str]:
    """Greedy-leftmost regex: each middle chunk at its leftmost occurrence (see the module
    docstring and :func:`_leftmost`), the last chunk anchored at the end. A trailing
    colon-crossing star (`.*` then the end) is no test at all, so it is left out."""
    chunks: list[tuple[int | None, list[Token]]] = []  # (index of the star before, tokens)
    current: list[Token] = []
    star_before: int | None = None
    for i, tok in enumerate(tokens):
        if tok is STAR:
            chunks.append((star_before, current))
            current = []
            star_before = i
        else:
            current.append(tok)
    chunks.append((star_before, current))
    parts = [r"\A", _literal(chunks[0][1], qmark_class)]
    for n, (star, chunk) in enumerate(chunks[1:], start=1):
        cls = star_class(star)  # type: ignore[arg-type]
        if n == len(chunks) - 1 and anchor_end:
            if chunk or cls != _ANY:
                parts.append(f"{cls}*{_literal(chunk, qmark_class)}\\Z")
            return re.compile("".join(parts), re.DOTALL)
        if chunk:
            parts.append(_leftmost(chunk, cls, qmark_class))
    if anchor_end:
        parts.append(r"\Z")
    return re.compile("".join(parts), re.DOTALL)


def _literal(chunk: Sequence[Token], qmark_class: str) -> str:
    """A chunk (literals and `?`, no star) as a regex of fixed length."""
    return "".join(re.escape(t) if isinstance(t, str) else qmark_class for t in chunk)


def _leftmost(chunk: Sequence[Token], cls: str, qmark_class: str) -> str:
    """A star of class `cls`, then `chunk` at its leftmost occurrence, with no way back.

    A chunk that starts with a literal character `c` skips from one `c` to the next: a run of
    other characters, then each `c` not followed by the rest of the chunk with the run after
    it, all possessive (linear, and as fast as a naive regex). When the star stays in its
    segment the runs exclude `:`, and a chunk that starts with `:` can only be at the next
    colon. Other chunks (starting with `?`) are an atomic group around a lazy star.
    """
    first = chunk[0]
    if not isinstance(first, str):
        return f"(?>{cls}*?{_literal(chunk, qmark_class)})"
    c = re.escape(first[0])
    rest = _literal([first[1:], *chunk[1:]], qmark_class)
    if cls == _SEG and first[0] == ":":
        return f"[^:]*+:{rest}"
    run = f"[^{c}]*+" if cls == _ANY else f"[^:{c}]*+"
    if not rest:
        return f"{run}{c}"
    return f"{run}(?:{c}(?!{rest}){run})*+{c}{rest}"


def _segment_matcher(tokens: Sequence[Token]) -> Matcher:
    """Resource patterns that mix star kinds: match ARN segments left to right.

    Each pattern segment either matches one whole subject segment, or ends with a colon-crossing
    star: then its head must match the start of one subject segment and the next pattern segment
    may start at any later subject segment. Cost: segments x subject, never exponential.
    """
    segments = _cut_at_colons(tokens)
    compiled: list[tuple[bool, Matcher]] = []
    for seg in segments:
        is_open = bool(seg) and seg[-1] is STAR
        body = seg[:-1] if is_open else seg
        rx = _regex(body, lambda _i: _ANY, _ANY, anchor_end=not is_open) if body else None
        if rx is None:
            compiled.append((is_open, _always if is_open else "".__eq__))
        else:
            compiled.append((is_open, rx.match))
    count = len(compiled)

    def match(subject: str) -> bool:
        parts = subject.split(":")
        n = len(parts)
        reachable = [0]
        for i, (is_open, seg_match) in enumerate(compiled):
            nxt: list[int] = []
            for j in reachable:
                if j < n and seg_match(parts[j]):
                    if is_open:
                        if i == count - 1:
                            return True
                        nxt = list(range(j + 1, n))  # smallest j first: covers all later ones
                        break
                    nxt.append(j + 1)
            if not nxt:
                return False
            reachable = nxt
        return n in reachable

    return match


def _cut_at_colons(tokens: Sequence[Token], most: int | None = None) -> list[list[Token]]:
    """The tokens cut at each colon of their text; with `most`, into at most that many parts,
    the last keeping its colons (an ARN's resource part)."""
    parts: list[list[Token]] = [[]]
    for tok in tokens:
        if isinstance(tok, str) and ":" in tok and (most is None or len(parts) < most):
            pieces = tok.split(":", -1 if most is None else most - len(parts))
            if pieces[0]:
                parts[-1].append(pieces[0])
            for piece in pieces[1:]:
                parts.append([piece] if piece else [])
        else:
            parts[-1].append(tok)
    return parts


def _arn_matcher(tokens: Sequence[Token]) -> Matcher:
    """ArnLike/ArnEquals: compare the six components separately (the sixth keeps its colons)."""
    components = _cut_at_colons(tokens, most=6)
    parts = [compile_glob(c) if c else "".__eq__ for c in components]
    count = len(parts)

    def match(subject: str) -> bool:
        values = subject.split(":", count - 1)
        if len(values) != count:
            return False
        return all(m(v) for m, v in zip(parts, values, strict=True))

    return match


class PatternSet:
    """Several patterns of one element (`Action`, `Resource`), matched as one: any may match.

    `matcher` is the fastest callable that decides the set, returning a bool: for the usual
    shapes (only exact names, only `prefix*`) it is a C-level call with no Python frame. `test`
    decides the set too, but its result need only be truthy: it is `matcher`, or the one
    compiled pattern itself when there is a single pattern of another shape (a regex's `match`).
    """

    __slots__ = ("match_all", "exact", "prefixes", "others", "matcher", "test")

    def __init__(
        self, patterns: Iterable[Sequence[Token]], *, dialect: str, ignore_case: bool
    ) -> None:
        self.match_all = False
        exact: set[str] = set()
        prefixes: list[str] = []
        others: list[Matcher] = []
        for raw in patterns:
            tokens = normalize(t.lower() if ignore_case and isinstance(t, str) else t for t in raw)
            if tokens == (STAR,):
                self.match_all = True
            elif not has_wildcard(tokens):
                exact.add("".join(tokens))  # type: ignore[arg-type]
            elif tokens[-1] is STAR and STAR not in tokens[:-1] and QMARK not in tokens:
                prefixes.append("".join(tokens[:-1]))  # type: ignore[arg-type]
            else:
                others.append(compile_glob(tokens, dialect=dialect))
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)
        self.others = tuple(others)
        self.matcher: Callable[[str], bool] = self.__call__
        if self.match_all:
            self.matcher = _always
        elif not self.others and not self.prefixes:
            self.matcher = self.exact.__contains__
        elif not self.others and not self.exact:
            self.matcher = methodcaller("startswith", self.prefixes)
        self.test: Matcher = self.matcher
        if len(self.others) == 1 and not self.exact and not self.prefixes and not self.match_all:
            self.test = self.others[0]

    def __call__(self, subject: str) -> bool:
        if self.match_all or subject in self.exact:
            return True
        if self.prefixes and subject.startswith(self.prefixes):
            return True
        for m in self.others:
            if m(subject):
                return True
        return False


@lru_cache(maxsize=65536)
def shared_pattern_set(
    patterns: tuple[tuple[Token, ...], ...], dialect: str, ignore_case: bool
) -> PatternSet:
    """PatternSets are immutable: statements with equal patterns share one (loads of large
    stores repeat the same Action lists thousands of times)."""
    return PatternSet(patterns, dialect=dialect, ignore_case=ignore_case)
