"""Routing rules: which child a complaint is disposed to, by region and category.

A province routes a complaint by its Kemendagri region code (``64.02`` Kutai Kartanegara,
``64.02.05`` one of its districts) to the regency or city, and may route some categories
(``kesehatan``) to a unit of its own (the health office's node) wherever they come from.
A rule is: a region prefix (or none: any region), optional categories, optional
classifications, and the child to dispose to. Pure: no I/O, no clock, no database.

Invariants:

1. A region prefix matches on whole segments: ``64.02`` matches ``64.02`` and
   ``64.02.05`` but not ``64.021`` or ``64``. No prefix matches every region.
2. A rule matches a complaint when its prefix, its categories (if any) and its
   classifications (if any) all match. Categories and classifications match exactly.
3. Precedence, highest first (``Rule.specificity``): what the complaint is counts before
   where it comes from.
     a. a rule that names classifications beats one that does not (whistleblowing goes to
        the inspectorate, information requests to the PPID, wherever they come from);
     b. then a rule that names categories beats one that does not (the sector's office);
     c. then the longer region prefix, in segments (``64.02.05`` > ``64.02`` > ``64`` >
        none: any region).
   So ``{region: "64", categories: [kesehatan], to: id-64-dinkes}`` takes health complaints
   from all of Kalimantan Timur, ``{region: "64.02", to: id-64-02}`` everything else from
   Kutai Kartanegara, and ``{region: "64.72", categories: [kesehatan], to: id-64-72}``
   keeps Samarinda's health complaints in Samarinda.
4. Two rules that are equally specific and can match the same complaint are a tie, and a
   tie is a configuration error found when node.yaml is loaded (``check_rules``). So at
   most one matching rule is the most specific, and a decision never depends on the order
   of the rules; file order only numbers the rules in messages.
5. The most specific matching rule decides, even when its child is not linked (or was
   revoked): then the complaint is not disposed, and the decision says why. There is no
   fallback to a less specific rule, which would send it to a unit the operator did not
   choose for it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from node.errors import ConfigError, ValidationError
from node.ids import NodeId, parse_node_id
from node.workflow.deadlines import Classification

__all__ = [
    "ComplaintFacts",
    "Considered",
    "Decision",
    "Rule",
    "check_rules",
    "decide",
    "describe",
    "parse_rules",
    "region_matches",
    "ties",
]

# The shapes ComplaintDraft.validate accepts (node.complaints), so a rule can name every
# region and category a complaint can carry, and nothing a complaint cannot.
_REGION = re.compile(r"^[0-9]{2}(\.[0-9]{2}){0,2}(\.[0-9]{4})?$")
_CATEGORY = re.compile(r"^[a-z0-9][a-z0-9_ -]{0,99}$")
_RULE_KEYS = ("to", "region", "categories", "classifications", "name")
_MAX_NAME = 100


@dataclass(frozen=True)
class Rule:
    """One routing rule; ``position`` is its index in ``routing.rules`` (for messages)."""

    to: NodeId
    region: str = ""  # a Kemendagri code prefix; "" matches any region
    categories: tuple[str, ...] = ()  # () matches any category
    classifications: tuple[str, ...] = ()  # () matches any classification
    name: str = ""
    position: int = 0

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.region.split(".")) if self.region else ()

    @property
    def specificity(self) -> tuple[bool, bool, int]:
        """Higher wins (invariant 3): names classifications, names categories, prefix
        segments."""
        return (bool(self.classifications), bool(self.categories), len(self.segments))

    @property
    def label(self) -> str:
        """How messages name the rule: its index in routing.rules, and its name if any."""
        return f"rules[{self.position}]" + (f" {self.name!r}" if self.name else "")


@dataclass(frozen=True)
class ComplaintFacts:
    """What routing looks at: the complaint's non-personal summary fields."""

    region_code: str
    category: str
    classification: str


@dataclass(frozen=True)
class Considered:
    """One rule as the decision saw it: whether it matched, and the outcome in words."""

    rule: Rule
    matched: bool
    outcome: str


@dataclass(frozen=True)
class Decision:
    """Where a complaint goes (``target``; None: it stays on this node) and why.

    ``rule`` is the most specific matching rule (None when none matched), also when its
    child is not linked; ``considered`` lists every rule in file order.
    """

    target: NodeId | None
    rule: Rule | None
    reason: str
    considered: tuple[Considered, ...]
    facts: ComplaintFacts | None = None  # None: the complaint could not be read


def describe(rule: Rule) -> str:
    """The rule in words, e.g. "rules[2] 'Dinkes' (region 64; category kesehatan) -> id-64-20"."""
    parts = [f"region {rule.region}" if rule.region else "any region"]
    if rule.categories:
        parts.append(
            ("category " if len(rule.categories) == 1 else "categories ")
            + ", ".join(rule.categories)
        )
    if rule.classifications:
        parts.append(
            ("classification " if len(rule.classifications) == 1 else "classifications ")
            + ", ".join(rule.classifications)
        )
    return f"{rule.label} ({'; '.join(parts)}) -> {rule.to}"


def region_matches(prefix: str, region_code: str) -> bool:
    """True if ``region_code`` starts with ``prefix`` on whole segments ("" matches all)."""
    if not prefix:
        return True
    want = prefix.split(".")
    return region_code.split(".")[: len(want)] == want


def _mismatch(rule: Rule, facts: ComplaintFacts) -> str | None:
    """Why ``rule`` does not match ``facts``; None if it matches."""
    if not region_matches(rule.region, facts.region_code):
        return f"region {facts.region_code} is not within {rule.region}"
    if rule.categories and facts.category not in rule.categories:
        return f"category {facts.category!r} is not {' or '.join(map(repr, rule.categories))}"
    if rule.classifications and facts.classification not in rule.classifications:
        return f"classification {facts.classification} is not {' or '.join(rule.classifications)}"
    return None


def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Two value lists can both match one complaint (an empty list matches anything)."""
    return not a or not b or bool(set(a) & set(b))


def ties(a: Rule, b: Rule) -> bool:
    """True if ``a`` and ``b`` are equally specific and can match the same complaint."""
    return (
        a.specificity == b.specificity
        and (region_matches(a.region, b.region) or region_matches(b.region, a.region))
        and _overlap(a.categories, b.categories)
        and _overlap(a.classifications, b.classifications)
    )


def check_rules(rules: Sequence[Rule]) -> None:
    """Raise ConfigError naming the first two rules that tie (invariant 4)."""
    for i, a in enumerate(rules):
        for b in rules[i + 1 :]:
            if ties(a, b):
                categories = sorted(set(a.categories) & set(b.categories)) or ["any"]
                kinds = sorted(set(a.classifications) & set(b.classifications)) or ["any"]
                raise ConfigError(
                    f"routing.rules[{b.position}] ties with routing.rules[{a.position}]: both "
                    f"match region {a.region or '(any)'}, category {', '.join(categories)}, "
                    f"classification {', '.join(kinds)} with the same precedence, so neither "
                    "would win. Merge them, or make one more specific (a longer region "
                    "prefix, or categories/classifications)"
                )


def decide(
    rules: Sequence[Rule], facts: ComplaintFacts, linked_children: Collection[str]
) -> Decision:
    """Decide where the complaint described by ``facts`` goes (module invariants 2-5).

    ``rules`` must have passed ``check_rules``; ``linked_children`` are the ids of the
    children this node is linked to now (not revoked).
    """
    ordered = sorted(rules, key=lambda r: r.position)
    misses = [_mismatch(r, facts) for r in ordered]
    matching = [r for r, miss in zip(ordered, misses, strict=True) if miss is None]
    best = max(matching, key=lambda r: r.specificity, default=None)
    if best is not None:
        tied = [r for r in matching if r.specificity == best.specificity]
        if len(tied) > 1:  # pragma: no cover - parse_rules refuses such rule sets
            check_rules(tied)

    def considered_as(rule: Rule, miss: str | None) -> Considered:
        if miss is not None or best is None:
            return Considered(rule, False, miss or "")
        if rule is not best:
            return Considered(rule, True, f"matches, but {best.label} is more specific")
        if best.to not in linked_children:
            return Considered(rule, True, f"the most specific, but {best.to} is not linked")
        return Considered(rule, True, "chosen")

    considered = tuple(considered_as(r, m) for r, m in zip(ordered, misses, strict=True))
    if best is None:
        what = (
            f"region {facts.region_code}, category {facts.category!r}, "
            f"classification {facts.classification}"
        )
        reason = (
            "no routing rules are configured (node.yaml routing.rules)"
            if not ordered
            else f"no routing rule matches {what}"
        )
        return Decision(
            None,
            None,
            f"{reason}; it stays on this node: dispose it with --to CHILD, or add a rule",
            considered,
            facts,
        )
    if best.to not in linked_children:
        return Decision(
            None,
            best,
            f"{describe(best)} matches, but {best.to} is not a linked child of this node "
            f"(never linked, or revoked); it stays on this node: link {best.to}, change "
            "the rule, or dispose it with --to CHILD",
            considered,
            facts,
        )
    others = len(matching) - 1
    why = f", the most specific of {len(matching)} matching rules" if others else ""
    return Decision(best.to, best, f"{describe(best)} matches{why}", considered, facts)


# --- node.yaml ---------------------------------------------------------------------------


def _values(where: str, key: str, raw: object, check: re.Pattern[str] | None) -> tuple[str, ...]:
    example = "[kesehatan, pendidikan]" if key == "categories" else "[pengaduan, aspirasi]"
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw or not all(isinstance(v, str) for v in raw):
        raise ConfigError(
            f"routing.rules[{where}].{key} must be a non-empty list such as {example}, "
            f"found {raw!r}; leave it out to match any"
        )
    if check is not None:
        bad = [v for v in raw if not check.fullmatch(v)]
        if bad:
            raise ConfigError(
                f"routing.rules[{where}].{key}: {bad[0]!r} is not a category; categories are "
                "lowercase words as complaints carry them, e.g. 'infrastruktur' or "
                "'jalan rusak'"
            )
    else:
        known = [c.value for c in Classification]
        bad = [v for v in raw if v not in known]
        if bad:
            raise ConfigError(
                f"routing.rules[{where}].classifications: unknown classification {bad[0]!r}; "
                f"expected some of {', '.join(known)}"
            )
    return tuple(sorted(set(raw)))


def _rule(position: int, raw: object, own_id: str) -> Rule:
    where = str(position)
    if not isinstance(raw, dict):
        raise ConfigError(
            f"routing.rules[{where}] must be a mapping such as "
            '{region: "64.02", to: id-64-02}, found ' + repr(raw)
        )
    unknown = sorted(set(raw) - set(_RULE_KEYS))
    if unknown:
        raise ConfigError(
            f"routing.rules[{where}]: unknown key(s) {', '.join(map(str, unknown))}; "
            f"known keys: {', '.join(_RULE_KEYS)}"
        )
    try:
        to = parse_node_id(raw.get("to"))  # type: ignore[arg-type]
    except ValidationError as e:
        raise ConfigError(f"routing.rules[{where}].to: {e}") from e
    if to == own_id:
        raise ConfigError(
            f"routing.rules[{where}].to is this node ({own_id}); a rule disposes to a child. "
            "Complaints no rule matches stay here"
        )
    region = raw.get("region", "")
    if region is None:
        region = ""
    if not isinstance(region, str):
        raise ConfigError(
            f"routing.rules[{where}].region must be a quoted Kemendagri code such as "
            f'"64" or "64.02", found {region!r} (unquoted, YAML reads 64.10 as the number 64.1)'
        )
    if region and not _REGION.fullmatch(region):
        raise ConfigError(
            f"routing.rules[{where}].region {region!r} is not a Kemendagri code prefix; "
            'expected e.g. "64", "64.02" or "64.02.05"'
        )
    name = raw.get("name", "")
    if not isinstance(name, str) or len(name) > _MAX_NAME or not name.isprintable():
        raise ConfigError(
            f"routing.rules[{where}].name must be a short label (at most {_MAX_NAME} "
            f"characters), found {name!r}"
        )
    return Rule(
        to=to,
        region=region,
        categories=_values(where, "categories", raw.get("categories"), _CATEGORY),
        classifications=_values(where, "classifications", raw.get("classifications"), None),
        name=name.strip(),
        position=position,
    )


def parse_rules(raw: object, own_id: str) -> tuple[Rule, ...]:
    """The ``routing.rules`` list of node.yaml as rules, checked for ties.

    ConfigError names the rule (``routing.rules[N]``, counted from 0) and what is wrong.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(
            "routing.rules must be a list of {region, categories, classifications, to}, "
            f"found {type(raw).__name__}"
        )
    rules = tuple(_rule(n, item, own_id) for n, item in enumerate(raw))
    check_rules(rules)
    return rules
