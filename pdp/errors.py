"""Errors raised by pdp, and the diagnostics they carry.

Hierarchy::

    PdpError                      base of everything pdp raises on purpose
    ├── PolicyValidationError     a policy document is malformed or invalid; has every Diagnostic
    ├── PolicyLoadError           a store version was refused; has every Diagnostic of every file
    └── RequestError              a request is malformed (bad principal, action, resource, context)

A Deny is a return value, never an exception: `evaluate` turns a `RequestError` or an internal
failure into a Deny that lists the error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pdp.text import printable

__all__ = ["Diagnostic", "PdpError", "PolicyLoadError", "PolicyValidationError", "RequestError"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in a document: where it is, a stable code, what is wrong, and a hint."""

    code: str
    path: str
    message: str
    source: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.source, self.path) if p)
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} ({self.hint})" if self.hint else text


class PdpError(Exception):
    """Base class of the errors pdp raises."""


class PolicyValidationError(PdpError):
    """A policy document was rejected; `diagnostics` lists every problem found, sorted by path."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        count = len(self.diagnostics)
        head = f"{count} problem{'s' if count != 1 else ''}"
        super().__init__(head + ":\n" + "\n".join(f"  {d}" for d in self.diagnostics))


class PolicyLoadError(PdpError):
    """A store version was refused as a whole; `diagnostics` lists every problem (file, path)."""

    def __init__(self, diagnostics: Iterable[Diagnostic], version: str | None = None) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        self.version = version
        count = len(self.diagnostics)
        head = f"version {version!r} refused" if version else "store refused"
        head += f": {count} problem{'s' if count != 1 else ''}"
        super().__init__(head + ":\n" + "\n".join(f"  {d}" for d in self.diagnostics))

    def one_line(self) -> str:
        """The refusal on one line, every problem included, safe for a log line:
        `version '0003' refused: 1 problem: users/bob.json: ...; ...`."""
        head = str(self).partition(":\n")[0]
        return printable(f"{head}: {'; '.join(str(d) for d in self.diagnostics)}")


class RequestError(PdpError):
    """An authorization request is malformed; the message names the field."""
