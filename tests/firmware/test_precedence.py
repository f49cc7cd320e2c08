"""The precedence rules as one pure function: a table of cases, and properties over any input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.precedence import Rule, Target, firmware_target, what_would_change

versions = st.integers(min_value=1, max_value=0xFFFE)
group_names = st.text(alphabet="abcdefghij-_0123456789", min_size=1, max_size=8)


@pytest.mark.parametrize(
    ("development", "locked", "groups", "default", "expected"),
    [
        (False, None, {}, None, Target(None, Rule.NONE)),
        (False, None, {}, 3, Target(3, Rule.PRODUCT_DEFAULT)),
        (False, None, {"beta": 5}, 3, Target(5, Rule.GROUP, ("beta",))),
        (
            False,
            None,
            {"beta": 2},
            3,
            Target(2, Rule.GROUP, ("beta",)),
        ),  # a group beats the default, even lower
        (False, None, {"beta": 5, "field": 7}, 3, Target(7, Rule.GROUP, ("field",))),
        (False, None, {"beta": 7, "field": 7}, None, Target(7, Rule.GROUP, ("beta", "field"))),
        (False, 4, {"beta": 7}, 9, Target(4, Rule.LOCKED)),
        (False, 1, {}, None, Target(1, Rule.LOCKED)),
        (True, 4, {"beta": 7}, 9, Target(None, Rule.DEVELOPMENT)),
        (True, None, {}, None, Target(None, Rule.DEVELOPMENT)),
    ],
)
def test_the_rules_in_order(development, locked, groups, default, expected):
    target = firmware_target(
        development=development, locked_version=locked, group_releases=groups, product_default=default
    )

    assert target == expected


@given(
    development=st.booleans(),
    locked=st.none() | versions,
    groups=st.dictionaries(group_names, versions, max_size=5),
    default=st.none() | versions,
)
def test_properties_of_any_input(development, locked, groups, default):
    target = firmware_target(
        development=development, locked_version=locked, group_releases=groups, product_default=default
    )

    if development:
        assert target.version is None
    elif locked is not None:
        assert target.version == locked
    elif groups:
        assert target.version == max(groups.values())
        assert all(groups[name] == target.version for name in target.groups)
    else:
        assert target.version == default
    # Every decision explains itself in words.
    assert target.explain()
    assert what_would_change(target)


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (Target(None, Rule.DEVELOPMENT), "development device"),
        (Target(4, Rule.LOCKED), "locked to version 4"),
        (Target(7, Rule.GROUP, ("beta",)), "released to its group (beta)"),
        (Target(7, Rule.GROUP, ("a", "b")), "released to its groups (a, b)"),
        (Target(3, Rule.PRODUCT_DEFAULT), "Version 3 is the product default"),
        (Target(None, Rule.NONE), "No firmware is released"),
    ],
)
def test_explanations(target, words):
    assert words in target.explain()
