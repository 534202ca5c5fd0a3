"""Untrusted strings made safe to print on a terminal or write to a line-oriented log.

Names, keys, paths and messages come from store files, request bodies and command lines. Printed
raw, an escape sequence in one of them can clear the reviewer's screen, move the cursor over a
HIGH finding, or forge a line; a bidirectional override can make text read differently from what
it is (CVE-2021-42574, "Trojan Source"). `printable` renders every such character as a visible
escape, the way Python writes it in a string literal: `\\x1b`, `\\u202e`, `\\r`.

Escaped: the Unicode categories Cc (C0 controls, DEL, C1 controls; newline, carriage return and
tab included, since a caller prints one line at a time), Cf (format characters: the bidi
embeddings, overrides and isolates U+202A-U+202E and U+2066-U+2069, zero-width characters, the
BOM), Cs (lone surrogates, which a file name read with `surrogateescape` can hold and which cannot
be encoded) and Zl/Zp (line and paragraph separators). Everything else, any script and emoji
included, is left as it is, and so is the backslash: escaped output is for reading, not parsing.
JSON output needs none of this: `json.dumps` escapes control characters itself.
"""

from __future__ import annotations

import unicodedata

__all__ = ["has_unsafe", "printable"]

_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(ch: str) -> str:
    short = _SHORT.get(ch)
    if short:
        return short
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def has_unsafe(text: str) -> bool:
    """True when `text` holds a character that `printable` would escape."""
    # str.isprintable() is False for every unsafe category (and for some harmless ones, such
    # as a no-break space), so it is a quick exact test for the common clean string.
    return not text.isprintable() and any(unicodedata.category(c) in _UNSAFE for c in text)


def printable(text: str) -> str:
    """`text` with control, format, surrogate and line-separator characters escaped."""
    if text.isprintable():
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _UNSAFE else c for c in text)
