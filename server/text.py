"""Untrusted text in log lines and messages: version names, store errors, paths.

A local stand-in for `pdp.text.printable` (being added on another branch); unify at merge.
"""

from __future__ import annotations

from pdp import PolicyLoadError

__all__ = ["printable", "refusal"]


def printable(text: object) -> str:
    """`text` on one line: control characters (a newline too) escaped as Python writes them."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def refusal(exc: PolicyLoadError) -> str:
    """A refused load on one line, every problem included: `version '0003' refused: 1 problem:
    users/bob.json: ...; ...`."""
    head = str(exc).partition(":\n")[0]
    return printable(f"{head}: {'; '.join(str(d) for d in exc.diagnostics)}")
