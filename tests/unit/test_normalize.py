"""The normalized scanning view and its map back to original offsets."""

from __future__ import annotations

import random
import re
import unicodedata

import pytest

from tollhouse.normalize import is_invisible, normalize

_INVISIBLES = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u202e\u2066\U000e0041\ufe0f"
_ALPHABET = (
    "abcxyz019 @.-"  # ASCII
    "éöñ中文"  # already normalized
    "\u0301\u0308\u0327"  # combining marks
    "\uff11\uff12\uff13\uff21\uff22\uff20"  # full-width
    "ﬁﬀ²①㎏"  # compatibility expansions
    "\u1100\u1161\u11a8"  # conjoining Hangul jamo (compose across starters)
    "\u2012\u2013\u2212" + _INVISIBLES  # dashes folded to "-"
)


def _reference(text: str) -> str:
    visible = "".join(c for c in text if not is_invisible(c))
    return re.sub(
        "[\u2010-\u2015\u2212\u2043\ufe58\ufe63\uff0d]", "-", unicodedata.normalize("NFKC", visible)
    )


def test_ascii_is_unchanged_and_identity_mapped() -> None:
    n = normalize("mail bob@example.com now")
    assert n.text == "mail bob@example.com now"
    assert n.span_to_original(5, 20) == (5, 20)
    assert n.removed_invisible == 0
    assert not n.changed


def test_zero_width_inside_email_is_removed_and_mapped_back() -> None:
    text = "to: bo\u200bb@exa\u2060mple.com!"
    n = normalize(text)
    assert n.text == "to: bob@example.com!"
    assert n.removed_invisible == 2
    start = n.text.index("bob")
    a, b = n.span_to_original(start, start + len("bob@example.com"))
    assert text[a:b] == "bo\u200bb@exa\u2060mple.com"


def test_full_width_digits_fold_and_map_exactly() -> None:
    text = "card \uff14\uff11\uff11\uff11\uff0d\uff11\uff11\uff11\uff11 end"  # full-width
    n = normalize(text)
    assert n.text == "card 4111-1111 end"
    assert n.span_to_original(5, 14) == (5, 14)


def test_tag_characters_and_bidi_are_counted() -> None:
    n = normalize("hi\U000e0069\U000e0067\u202ethere")
    assert n.text == "hithere"
    assert n.removed_invisible == 3


def test_composition_maps_to_both_source_characters() -> None:
    n = normalize("cafe\u0301 x")
    assert n.text == "café x"
    assert n.span_to_original(3, 4) == (3, 5)
    assert n.span_to_original(5, 6) == (6, 7)


def test_expansion_maps_each_char_to_the_ligature() -> None:
    n = normalize("a\ufb01b")
    assert n.text == "afib"
    assert n.span_to_original(1, 2) == (1, 2)
    assert n.span_to_original(2, 3) == (1, 2)
    assert n.span_to_original(3, 4) == (2, 3)


def test_empty_spans_and_bounds() -> None:
    n = normalize("x\u200by")
    assert n.span_to_original(2, 2) == (3, 3)
    assert n.span_to_original(0, 0) == (0, 0)
    with pytest.raises(ValueError):
        n.span_to_original(1, 5)


@pytest.mark.parametrize("seed", range(40))
def test_property_text_and_mapping(seed: int) -> None:
    rng = random.Random(seed)
    length = rng.randint(0, 400) if seed % 4 else rng.randint(2000, 5000)  # cross block splits
    text = "".join(rng.choice(_ALPHABET) for _ in range(length))
    n = normalize(text)
    assert n.text == _reference(text)
    assert n.removed_invisible == sum(1 for c in text if is_invisible(c))
    prev = (0, 0)
    for i in range(len(n.text)):
        a, b = n.span_to_original(i, i + 1)
        assert 0 <= a < b <= len(text)
        assert (a, b) >= prev  # monotonic
        prev = (a, b)
    for _ in range(50):
        if not n.text:
            break
        i = rng.randrange(len(n.text))
        j = rng.randint(i, min(len(n.text), i + 30))
        a, b = n.span_to_original(i, j)
        # The original span normalizes to text that contains the normalized span.
        assert n.text[i:j] in _reference(text[a:b])
