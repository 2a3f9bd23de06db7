"""The Redis ACL rules a cluster stores, and how one user's roles compose into ACL SETUSER arguments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recluster.api.acl_rules import CATEGORIES, FLAG_TOKENS, compose, rule_problem

pytestmark = pytest.mark.unit

command = st.from_regex(r"[a-z][a-z0-9_]{0,10}(\|[a-z][a-z0-9_]{0,8})?", fullmatch=True)
pattern = st.from_regex(r"[A-Za-z0-9:*?_.-]{1,12}", fullmatch=True)
good_token = st.one_of(
    st.builds(lambda sign, c: f"{sign}{c}", st.sampled_from("+-"), command),
    st.builds(lambda sign, c: f"{sign}@{c}", st.sampled_from("+-"), st.sampled_from(sorted(CATEGORIES))),
    st.builds(lambda prefix, p: f"{prefix}{p}", st.sampled_from(["~", "%R~", "%W~", "%RW~", "&"]), pattern),
    st.sampled_from(sorted(FLAG_TOKENS)),
)


@given(st.lists(good_token, min_size=1, max_size=8))
def test_rules_of_commands_categories_keys_and_channels_are_accepted(tokens: list[str]) -> None:
    assert rule_problem(" ".join(tokens)) is None


@given(
    st.lists(good_token, max_size=4),
    st.sampled_from(
        [
            "on",
            "off",
            "nopass",
            "reset",
            "resetpass",
            ">secret",
            "<secret",
            "#" + "a" * 64,
            "!" + "b" * 64,
            "(+get ~x)",
            "+@nosuchcategory",
            "get",
            "~",
            "&",
            "+GET$",
        ]
    ),
    st.lists(good_token, max_size=4),
)
def test_a_rule_with_an_identity_token_or_a_malformed_one_is_refused_naming_it(
    before: list[str], bad: str, after: list[str]
) -> None:
    problem = rule_problem(" ".join([*before, bad, *after]))
    assert problem is not None
    assert f"'{bad.split()[0]}'" in problem


@pytest.mark.parametrize("rule", ["", "   ", "+get\t~x", "+get\n~x", "+@read ~*" + " ~k" * 2000])
def test_empty_control_characters_and_overlong_rules_are_refused(rule: str) -> None:
    assert rule_problem(rule) is not None


@given(st.lists(st.lists(good_token, min_size=1, max_size=4).map(" ".join), min_size=1, max_size=4))
def test_compose_gives_the_first_rule_as_root_and_each_other_distinct_rule_as_a_selector(
    rules: list[str],
) -> None:
    args = compose(rules)
    unique = list(dict.fromkeys(rules))
    assert args[: len(unique[0].split())] == unique[0].split()
    selectors = args[len(unique[0].split()) :]
    assert selectors == [f"({rule})" for rule in unique[1:]]


def test_compose_of_no_rule_is_nothing() -> None:
    assert compose([]) == []
