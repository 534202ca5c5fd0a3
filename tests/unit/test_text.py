"""pdp.text.printable: what it escapes and what it leaves alone."""

from __future__ import annotations

import pytest

from pdp.text import has_unsafe, printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("policies/ok.json: Statement[0]", "policies/ok.json: Statement[0]"),
        ("café 東京 😀 a\\b", "café 東京 😀 a\\b"),  # any script, emoji and backslashes stay
        ("a\u00a0b", "a\u00a0b"),  # a no-break space is not a control character
        ("\x1b[2J\x07\x00", "\\x1b[2J\\x07\\x00"),  # C0
        ("tab\tcr\rlf\n", "tab\\tcr\\rlf\\n"),
        ("del\x7f csi\x9b nel\x85", "del\\x7f csi\\x9b nel\\x85"),  # DEL and C1
        ("\u202aa\u202bb\u202cc\u202dd\u202ee", "\\u202aa\\u202bb\\u202cc\\u202dd\\u202ee"),
        ("\u2066a\u2067b\u2068c\u2069", "\\u2066a\\u2067b\\u2068c\\u2069"),  # bidi isolates
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("bad-utf8-\udcff", "bad-utf8-\\udcff"),  # a surrogateescape'd byte cannot be encoded
    ],
)
def test_printable_escapes_exactly_the_characters_a_terminal_acts_on(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert has_unsafe(raw) is (raw != shown)
    assert printable(shown) == shown  # idempotent: escaping twice changes nothing
