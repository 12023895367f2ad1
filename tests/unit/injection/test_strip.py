"""Smuggling characters are removed before the model sees the prompt; legitimate ones stay."""

from __future__ import annotations

import pytest

from tollhouse.injection.smuggle import strip_smuggled

ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"


@pytest.mark.parametrize(
    ("text", "clean", "removed"),
    [
        ("plain ascii", "plain ascii", 0),
        ("ig\u200bnore this", "ignore this", 1),
        ("i\u200dg\u200dn\u00adore", "ignore", 3),
        ("hi \U000e0049\U000e0067\U000e006e!", "hi !", 3),
        ("abc \u202eevil\u202c def", "abc evil def", 2),
        ("a\u2066b\u2069c", "abc", 2),
    ],
)
def test_smuggling_characters_are_removed(text, clean, removed):
    assert strip_smuggled(text) == (clean, removed)


@pytest.mark.parametrize(
    "text",
    [
        f"go {ENGLAND} team",  # a subdivision flag is made of tag characters
        "family \U0001f468\u200d\U0001f469\u200d\U0001f467",  # joiners inside emoji
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # ZWNJ in Persian
        "\u05e9\u05dc\u05d5\u05dd\u200f world",  # a right-to-left mark
        "日本語のテキスト",
    ],
)
def test_legitimate_invisible_characters_stay(text):
    assert strip_smuggled(text) == (text, 0)


def test_a_flag_next_to_smuggled_tags_keeps_the_flag_only():
    assert strip_smuggled(f"{ENGLAND}\U000e0041\U000e0042") == (ENGLAND, 2)
