"""Routing rules (node.workflow.routing): segment-wise region prefixes, the precedence, ties
refused, unlinked children, and invariants of decide under random rule sets (hypothesis)."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.errors import ConfigError
from node.ids import NodeId
from node.workflow.routing import (
    ComplaintFacts,
    Rule,
    check_rules,
    decide,
    parse_rules,
    region_matches,
    ties,
)

KALTIM_CHILDREN = {"id-64-02", "id-64-08", "id-64-72", "id-64-dinkes", "id-64-inspektorat"}


def rule(
    to: str, region: str = "", cats: tuple[str, ...] = (), kinds: tuple[str, ...] = ()
) -> Rule:
    return Rule(NodeId(to), region, tuple(sorted(cats)), tuple(sorted(kinds)))


def numbered(*rules: Rule) -> list[Rule]:
    return [dataclasses.replace(r, position=n) for n, r in enumerate(rules)]


def facts(region: str, category: str = "jalan rusak", kind: str = "pengaduan") -> ComplaintFacts:
    return ComplaintFacts(region, category, kind)


# The province of the issue: health from anywhere to the health office, whistleblowing to
# the inspectorate, everything else by region to the regency or city.
KALTIM = numbered(
    rule("id-64-02", "64.02"),
    rule("id-64-08", "64.08"),
    rule("id-64-72", "64.72"),
    rule("id-64-dinkes", "64", ("kesehatan",)),
    rule("id-64-72", "64.72", ("kesehatan",)),
    rule("id-64-inspektorat", kinds=("whistleblowing",)),
)


@pytest.mark.parametrize(
    ("prefix", "code", "expected"),
    [
        pytest.param("64.02", "64.02", True, id="same-code"),
        pytest.param("64.02", "64.02.05", True, id="district-of-it"),
        pytest.param("64.02", "64.02.05.2001", True, id="village-of-it"),
        pytest.param("64.02", "64.021", False, id="not-on-a-segment-boundary"),
        pytest.param("64.02", "64", False, id="shorter-code"),
        pytest.param("64.02", "64.72", False, id="sibling"),
        pytest.param("64.1", "64.10", False, id="string-prefix-is-not-enough"),
        pytest.param("", "65.01", True, id="no-prefix-matches-all"),
    ],
)
def test_region_prefix_matches_whole_segments(prefix: str, code: str, expected: bool) -> None:
    """A prefix matches a code only on whole dot-separated segments."""
    assert region_matches(prefix, code) is expected


@pytest.mark.parametrize(
    ("complaint", "target", "position"),
    [
        pytest.param(facts("64.02.05"), "id-64-02", 0, id="road-in-kukar-to-kukar"),
        pytest.param(facts("64.02.05", "kesehatan"), "id-64-dinkes", 3, id="health-to-dinkes"),
        pytest.param(facts("64.72.01", "kesehatan"), "id-64-72", 4, id="samarinda-health"),
        pytest.param(facts("64.72.01"), "id-64-72", 2, id="samarinda-road"),
        pytest.param(
            facts("64.72", "kesehatan", "whistleblowing"),
            "id-64-inspektorat",
            5,
            id="whistleblowing-beats-category-and-region",
        ),
        pytest.param(facts("64.08.03", "pendidikan", "aspirasi"), "id-64-08", 1, id="kutim"),
    ],
)
def test_kalimantan_timur_rules_route_by_precedence(
    complaint: ComplaintFacts, target: str, position: int
) -> None:
    """Classification rules beat category rules, which beat longer region prefixes."""
    check_rules(KALTIM)
    decision = decide(KALTIM, complaint, KALTIM_CHILDREN)
    assert decision.target == target
    assert decision.rule is not None and decision.rule.position == position
    assert [c.rule.position for c in decision.considered] == list(range(len(KALTIM)))
    assert [c.outcome for c in decision.considered].count("chosen") == 1


def test_no_matching_rule_keeps_the_complaint_and_says_why() -> None:
    """A complaint outside every rule has no target; the reason names its facts."""
    decision = decide(KALTIM, facts("65.01"), KALTIM_CHILDREN)
    assert decision.target is None and decision.rule is None
    assert "no routing rule matches region 65.01" in decision.reason
    assert all(not c.matched for c in decision.considered)
    assert decision.considered[0].outcome == "region 65.01 is not within 64.02"


def test_no_rules_at_all_says_so() -> None:
    """With no rules, the decision points at node.yaml's routing.rules."""
    decision = decide([], facts("64.02"), KALTIM_CHILDREN)
    assert decision.target is None
    assert "no routing rules are configured" in decision.reason


def test_rule_to_unlinked_child_disposes_nowhere_without_fallback() -> None:
    """The most specific rule names a child that is not linked: no target, no fallback."""
    linked = KALTIM_CHILDREN - {"id-64-dinkes"}
    decision = decide(KALTIM, facts("64.02.05", "kesehatan"), linked)
    assert decision.target is None
    assert decision.rule is not None and decision.rule.to == "id-64-dinkes"
    assert "id-64-dinkes is not a linked child" in decision.reason
    outcomes = {c.rule.position: c.outcome for c in decision.considered}
    assert outcomes[3] == "the most specific, but id-64-dinkes is not linked"
    assert outcomes[0] == "matches, but rules[3] is more specific"


@pytest.mark.parametrize(
    ("a", "b", "tie"),
    [
        pytest.param(rule("x", "64.02"), rule("y", "64.02"), True, id="same-prefix"),
        pytest.param(rule("x", "64.02"), rule("y", "64.08"), False, id="disjoint-regions"),
        pytest.param(
            rule("x", "64", ("kesehatan", "gizi")),
            rule("y", "64", ("gizi",)),
            True,
            id="shared-category",
        ),
        pytest.param(
            rule("x", "64", ("kesehatan",)), rule("y", "64", ("pendidikan",)), False, id="disjoint"
        ),
        pytest.param(rule("x", "64", ("kesehatan",)), rule("y", "64"), False, id="more-specific"),
        pytest.param(
            rule("x", cats=("kesehatan",)),
            rule("y", kinds=("aspirasi",)),
            False,
            id="classification-outranks-category",
        ),
        pytest.param(
            rule("x", "64", kinds=("aspirasi",)),
            rule("y", "64", kinds=("aspirasi", "pengaduan")),
            True,
            id="shared-classification",
        ),
        pytest.param(rule("x"), rule("y"), True, id="two-catch-alls"),
    ],
)
def test_ties_are_equal_specificity_and_overlap(a: Rule, b: Rule, tie: bool) -> None:
    """ties() is symmetric and check_rules refuses exactly the tied pairs, naming both."""
    assert ties(a, b) is tie and ties(b, a) is tie
    pair = numbered(a, b)
    if tie:
        with pytest.raises(ConfigError, match=r"routing.rules\[1\] ties with routing.rules\[0\]"):
            check_rules(pair)
    else:
        check_rules(pair)


def test_parse_rules_reads_the_yaml_shape() -> None:
    """parse_rules numbers rules from 0, sorts and dedupes values, keeps the name."""
    rules = parse_rules(
        [
            {"region": "64.02", "to": "id-64-02"},
            {
                "name": "Dinkes",
                "region": "64",
                "categories": ["kesehatan", "gizi", "kesehatan"],
                "to": "id-64-dinkes",
            },
        ],
        "id-64",
    )
    assert rules == (
        Rule(NodeId("id-64-02"), "64.02", position=0),
        Rule(NodeId("id-64-dinkes"), "64", ("gizi", "kesehatan"), name="Dinkes", position=1),
    )


# --- invariants under random rule sets ---------------------------------------------------

REGIONS = ["", "64", "64.02", "64.02.05", "64.02.05.2001", "64.72", "64.72.01", "65"]
CODES = ["64", "64.02", "64.02.05", "64.02.05.2001", "64.02.06", "64.72.01", "65.01"]
CATEGORIES = ["kesehatan", "pendidikan", "jalan rusak"]
KINDS = ["pengaduan", "aspirasi", "whistleblowing"]
CHILDREN = ["id-64-02", "id-64-72", "id-64-dinkes", "id-65"]

raw_rules = st.builds(
    rule,
    st.sampled_from(CHILDREN),
    st.sampled_from(REGIONS),
    st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True).map(tuple),
    st.lists(st.sampled_from(KINDS), max_size=2, unique=True).map(tuple),
)
complaint_facts = st.builds(
    ComplaintFacts, st.sampled_from(CODES), st.sampled_from(CATEGORIES), st.sampled_from(KINDS)
)
linked_sets = st.sets(st.sampled_from(CHILDREN))


def tie_free(candidates: list[Rule]) -> list[Rule]:
    """The candidates without any that tie with an earlier one, numbered in order."""
    kept: list[Rule] = []
    for r in candidates:
        if not any(ties(r, k) for k in kept):
            kept.append(r)
    return numbered(*kept)


rule_sets = st.lists(raw_rules, max_size=12).map(tie_free)


def matches(r: Rule, f: ComplaintFacts) -> bool:
    return (
        region_matches(r.region, f.region_code)
        and (not r.categories or f.category in r.categories)
        and (not r.classifications or f.classification in r.classifications)
    )


@given(rule_sets, complaint_facts, linked_sets, st.randoms(use_true_random=False))
def test_decision_does_not_depend_on_rule_order(
    rules: list[Rule], f: ComplaintFacts, linked: set[str], rnd: random.Random
) -> None:
    """Shuffling a tie-free rule set changes nothing in the decision, messages included."""
    check_rules(rules)
    shuffled = list(rules)
    rnd.shuffle(shuffled)
    assert decide(shuffled, f, linked) == decide(rules, f, linked)


@given(rule_sets, complaint_facts, linked_sets)
def test_the_chosen_rule_is_the_unique_most_specific_match(
    rules: list[Rule], f: ComplaintFacts, linked: set[str]
) -> None:
    """decide picks a matching rule strictly more specific than every other match; the
    target is its child exactly when that child is linked."""
    decision = decide(rules, f, linked)
    matching = [r for r in rules if matches(r, f)]
    assert [c.matched for c in decision.considered] == [matches(r, f) for r in rules]
    if not matching:
        assert decision.rule is None and decision.target is None
        return
    assert decision.rule is not None and decision.rule in matching
    for other in matching:
        if other is not decision.rule:
            assert other.specificity < decision.rule.specificity
    assert decision.target == (decision.rule.to if decision.rule.to in linked else None)


@given(rule_sets, complaint_facts, linked_sets, raw_rules)
def test_a_more_specific_matching_rule_always_wins(
    rules: list[Rule], f: ComplaintFacts, linked: set[str], extra: Rule
) -> None:
    """Adding a matching rule more specific than the current choice makes it (or an even
    more specific one) the choice."""
    before = decide(rules, f, linked)
    if not matches(extra, f) or any(ties(extra, r) for r in rules):
        return
    if before.rule is not None and extra.specificity <= before.rule.specificity:
        return
    after = decide([*rules, dataclasses.replace(extra, position=len(rules))], f, linked)
    assert after.rule is not None
    assert after.rule.specificity >= extra.specificity
    assert after.rule.position == len(rules)


@given(rule_sets, complaint_facts, linked_sets)
def test_rules_that_do_not_match_do_not_matter(
    rules: list[Rule], f: ComplaintFacts, linked: set[str]
) -> None:
    """Removing every non-matching rule leaves the target and the chosen rule as they were."""
    full = decide(rules, f, linked)
    only = decide([r for r in rules if matches(r, f)], f, linked)
    assert (only.target, only.rule) == (full.target, full.rule)


@given(st.lists(raw_rules, min_size=2, max_size=8))
def test_check_rules_refuses_a_set_exactly_when_some_pair_ties(candidates: list[Rule]) -> None:
    """check_rules raises iff two rules tie; a tie-free set always passes."""
    rules = numbered(*candidates)
    tied = any(ties(a, b) for i, a in enumerate(rules) for b in rules[i + 1 :])
    if tied:
        with pytest.raises(ConfigError, match="ties with"):
            check_rules(rules)
    else:
        check_rules(rules)
