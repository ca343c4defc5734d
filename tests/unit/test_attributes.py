"""Colour and light attributes of pictures, and the query words that ask for them."""

from __future__ import annotations

import numpy as np
import pytest

from visualsearch.models.attributes import DIM, DIMS, WORDS, attributes, query_target


def solid(rgb, size=64):
    return np.full((size, size, 3), rgb, np.uint8)


def strongest(vector, n=1):
    return [DIMS[i] for i in np.argsort(-vector)[:n]]


@pytest.mark.parametrize(
    "rgb, expected",
    [
        ((200, 30, 30), "red"),
        ((245, 140, 30), "orange"),
        ((40, 90, 210), "blue"),
        ((130, 50, 170), "purple"),
        ((50, 160, 60), "green"),
        ((240, 120, 180), "pink"),
        ((120, 75, 40), "brown"),
    ],
)
def test_a_coloured_picture_is_mostly_its_colour(rgb, expected):
    vector = attributes(solid(rgb)[None])[0]
    assert vector.shape == (DIM,) and abs(np.linalg.norm(vector) - 1) < 1e-5
    assert vector[DIMS.index(expected)] == vector[: DIMS.index("white") + 1].max()
    assert vector[DIMS.index("colourful")] > 0.3


def test_light_and_black_and_white():
    night, snow = attributes(np.stack([solid((8, 10, 20)), solid((245, 245, 248))]))
    assert set(strongest(night, 2)) <= {"black", "dark", "greyish"} and night[DIMS.index("bright")] == 0
    assert snow[DIMS.index("white")] > 0.5 and snow[DIMS.index("bright")] > 0.5
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::2] = 230  # a black-and-white picture: nothing coloured
    bw = attributes(stripes[None])[0]
    assert bw[DIMS.index("greyish")] > 0.4 and bw[DIMS.index("colourful")] == 0


def test_query_words_become_a_target():
    target, words = query_target("A purple mountain at night, in black and white")
    assert words == ["purple", "night", "black and white"]  # the phrase before its words
    assert target is not None and abs(np.linalg.norm(target) - 1) < 1e-5
    assert {"purple", "dark", "greyish"} <= set(strongest(target, 4))
    assert query_target("a dog on a beach") == (None, [])
    assert query_target("lightning")[1] == []  # whole words only
    # Hyphens join a phrase as spaces do: a black-and-white photo is asked for, not black and white.
    assert query_target("old black-and-white  street photo")[1] == ["black and white"]
    assert query_target("Black - and - White")[1] == ["black and white"]
    assert all(set(meaning) <= set(DIMS) for meaning in WORDS.values())


def test_a_picture_matches_the_words_for_its_colour():
    pictures = attributes(np.stack([solid((40, 90, 210)), solid((245, 140, 30)), solid((8, 8, 12))]))
    for words, best in (("blue", 0), ("sunset", 1), ("night", 2), ("warm", 1), ("cold", 0)):
        target, _ = query_target(words)
        assert int(np.argmax(pictures @ target)) == best, words


def test_left_out_colour_words_point_the_colour_score_away_from_them():
    """`flowers -yellow`: the colour score is minus yellow's (half, as a left-out part counts);
    `yellow -dark`: yellow's minus half of dark's; no such words anywhere: no colour score."""
    from visualsearch.search import parse
    from visualsearch.services.search import ATTRIBUTE_WEIGHT, attribute_query

    yellow, _ = query_target("yellow")
    direction, weight = attribute_query(parse("flowers -yellow"), None, 0.0)
    assert np.allclose(direction, -yellow, atol=1e-6) and abs(weight - 0.5 * ATTRIBUTE_WEIGHT) < 1e-6
    dark, _ = query_target("dark")
    direction, weight = attribute_query(parse("yellow -dark"), yellow, ATTRIBUTE_WEIGHT)
    expected = ATTRIBUTE_WEIGHT * yellow - 0.5 * ATTRIBUTE_WEIGHT * dark
    assert np.allclose(direction * weight, expected, atol=1e-6)
    assert attribute_query(parse("beach -people"), None, 0.0) is None
