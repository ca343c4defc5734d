"""The text query language: clauses, negatives, weights, and how they combine."""

from __future__ import annotations

import numpy as np
import pytest

from visualsearch.errors import InvalidInput
from visualsearch.search import Clause, combine, parse


@pytest.mark.parametrize(
    "query, clauses",
    [
        ("dog on a beach", [("dog on a beach", 1, False)]),
        ("beach -people", [("beach", 1, False), ("people", 0.5, True)]),
        ("beach -people sunset", [("beach", 1, False), ("people", 0.5, True), ("sunset", 1, False)]),
        ('cat -"black cat"', [("cat", 1, False), ("black cat", 0.5, True)]),
        ("beach - lots of people", [("beach", 1, False), ("lots of people", 0.5, True)]),
        ("red car + night^0.5", [("red car", 1, False), ("night", 0.5, False)]),
        ("beach^2 +sunset -people^1.5", [("beach", 2, False), ("sunset", 1, False), ("people", 1.5, True)]),
        ('"gold bracelet"^2 -watch', [("gold bracelet", 2, False), ("watch", 0.5, True)]),
        # not operators: inside a word, a number, a quoted phrase
        ("t-shirt on a chair", [("t-shirt on a chair", 1, False)]),
        ("-5 degrees and snow", [("-5 degrees and snow", 1, False)]),
        ('"rock - paper - scissors"', [("rock - paper - scissors", 1, False)]),
    ],
)
def test_parse(query, clauses):
    assert parse(query).clauses == tuple(Clause(t, w, n) for t, w, n in clauses)


@pytest.mark.parametrize(
    "query, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("-people", "only says what to leave out"),
        ('- "a crowd"', "only says what to leave out"),
        ("beach^0", "weight must be above 0"),
        ("beach^11", "at most 10"),
        ("cat^-1", "a weight is a plain number"),
        ("cat^1e3", "a weight is a plain number"),
        ("cat^", "a weight is a plain number"),
        (" + ".join(["x"] * 17), "at most 16 parts"),
    ],
)
def test_parse_refuses_with_a_reason(query, message):
    with pytest.raises(InvalidInput, match=message):
        parse(query)


def test_describe_says_how_the_query_was_read():
    assert parse("beach^2 + sunset -people").describe() == "beach (x2) + sunset, without people"
    assert parse("beach -people^1").describe() == "beach, without people (x1)"
    assert parse("dog on a beach").plain and not parse("beach^2").plain


def test_combine_adds_positives_and_subtracts_negatives():
    a, b, c = np.eye(3, dtype=np.float32)
    vector = combine(parse("a + b^0.5 -c"), np.stack([a, b, c]))  # a left-out part counts half by default
    expected = np.array([1, 0.5, -0.5]) / np.linalg.norm([1, 0.5, -0.5])
    np.testing.assert_allclose(vector, expected, rtol=1e-6)
    assert vector.dtype == np.float32
    with_image = combine(parse("b"), np.stack([b]), base=a)  # like an image, changed by words
    np.testing.assert_allclose(with_image, np.array([1, 1, 0]) / np.sqrt(2), rtol=1e-6)


def test_parts_that_cancel_are_refused():
    a = np.array([1.0, 0.0], dtype=np.float32)
    with pytest.raises(InvalidInput, match="cancel each other out"):
        combine(parse("cat -kitten^1"), np.stack([a, a]))
