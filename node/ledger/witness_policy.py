"""Witness policies: which cosigners an auditor trusts and how many must cosign a checkpoint
before it is believed. The text follows the Sigsum policy file (sigsum-go doc/policy.md),
with C2SP verifier keys instead of raw hex keys, so a witness is named as it signs:

    # comments run to the end of the line; blank lines are ignored
    log <vkey> [<url>]                 the log's note key (type 0x01); optional
    witness <name> <vkey> [<url>]      a cosigner's key (type 0x04, tlog-cosignature)
    group <name> all|any|<k> <name>... k of the members (witnesses or groups) cosigned
    quorum <name>|none                 exactly once: the witness or group that must hold

Invariants:
- A name is defined before any line refers to it, so groups cannot be circular; witnesses
  and groups share one namespace, and `none` is predefined (no cosignature required).
- `parse` accepts a whole policy or raises ValidationError naming the line; no partial
  policy is returned.
- `check` returns only when the note is signed by one of the log keys and its valid
  cosignatures satisfy the quorum; otherwise it raises SignatureError (an IntegrityError)
  saying what was required and which witnesses did cosign. A known witness whose line
  does not verify rejects the note, as a known key's bad signature does in a signed note.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from node.errors import SignatureError, ValidationError
from node.ledger.checkpoint import Checkpoint
from node.ledger.cosignature import CosignerKey, parse_line, parse_vkey
from node.ledger.note import Verifier, open_checkpoint, split_note
from node.ledger.note import parse_vkey as parse_note_vkey

__all__ = [
    "NONE",
    "CosignedCheckpoint",
    "Group",
    "Policy",
    "PolicyWitness",
    "check",
    "check_export",
    "parse",
]

NONE = "none"
MAX_POLICY_SIZE = 1 << 16


@dataclass(frozen=True)
class PolicyWitness:
    name: str
    key: CosignerKey
    url: str | None = None


@dataclass(frozen=True)
class Group:
    """Satisfied when at least `threshold` of `members` (witness or group names) are."""

    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    logs: tuple[Verifier, ...] = ()
    witnesses: tuple[PolicyWitness, ...] = ()
    groups: tuple[Group, ...] = ()
    quorum: str = NONE
    _by_name: dict[str, PolicyWitness | Group] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for witness in self.witnesses:
            self._by_name[witness.name] = witness
        for group in self.groups:
            self._by_name[group.name] = group

    def satisfied(self, cosigned: frozenset[str], name: str | None = None) -> bool:
        """Whether the witnesses named in `cosigned` satisfy `name` (default: the quorum)."""
        name = self.quorum if name is None else name
        if name == NONE:
            return True
        item = self._by_name[name]
        if isinstance(item, PolicyWitness):
            return item.name in cosigned
        held = sum(1 for member in item.members if self.satisfied(cosigned, member))
        return held >= item.threshold

    def describe(self, name: str | None = None) -> str:
        """The rule for `name` (default: the quorum) in words, for error messages."""
        name = self.quorum if name is None else name
        item = self._by_name.get(name)
        if not isinstance(item, Group):
            return name
        inner = ", ".join(self.describe(member) for member in item.members)
        return f"{item.threshold} of ({inner})"


@dataclass(frozen=True)
class CosignedCheckpoint:
    """A checkpoint that satisfied a policy, and the witnesses whose cosignatures verified."""

    checkpoint: Checkpoint
    witnesses: tuple[str, ...]
    timestamps: tuple[int, ...]


def parse(text: str) -> Policy:
    """Parse a policy text; raise ValidationError naming the first bad line."""
    if len(text) > MAX_POLICY_SIZE:
        raise ValidationError(f"expected a policy of at most {MAX_POLICY_SIZE} characters")
    logs: list[Verifier] = []
    witnesses: list[PolicyWitness] = []
    groups: list[Group] = []
    defined: set[str] = {NONE}
    quorum: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        try:
            keyword, args = words[0], words[1:]
            if keyword == "log":
                _arity(args, 1, 2)
                logs.append(parse_note_vkey(args[0]))
            elif keyword == "witness":
                _arity(args, 2, 3)
                _new_name(args[0], defined)
                url = args[2] if len(args) == 3 else None
                witnesses.append(PolicyWitness(args[0], parse_vkey(args[1]), url))
            elif keyword == "group":
                groups.append(_group(args, defined))
            elif keyword == "quorum":
                _arity(args, 1, 1)
                if quorum is not None:
                    raise ValidationError("expected one quorum line, found a second")
                _known(args[0], defined)
                quorum = args[0]
            else:
                raise ValidationError(
                    f"expected log, witness, group or quorum, found {keyword[:32]!r}"
                )
        except ValidationError as e:
            raise ValidationError(f"policy line {number}: {e}") from e
    if quorum is None:
        raise ValidationError("expected a quorum line (quorum <name> or quorum none), found none")
    keys = [w.key for w in witnesses]
    if len({(k.name, k.key_id) for k in keys}) != len(keys):
        raise ValidationError("expected each witness key once, found one listed twice")
    return Policy(tuple(logs), tuple(witnesses), tuple(groups), quorum)


def check(note: bytes, policy: Policy, log_keys: Sequence[Verifier] = ()) -> CosignedCheckpoint:
    """Check a cosigned checkpoint note against `policy`.

    1. The note is signed by one of the policy's log keys, or of `log_keys` when the
       policy names none (signed-note; tlog-checkpoint), and its text is a checkpoint.
    2. Each policy witness with a line on the note: its cosignature verifies
       (tlog-cosignature, "Ed25519 signed message").
    3. The witnesses whose cosignatures verified satisfy the quorum.
    Raises SignatureError (step 1, 2 or 3) or ValidationError (a malformed note).
    """
    logs = list(policy.logs) or list(log_keys)
    if not logs:
        raise ValidationError("expected a log key in the policy (log <vkey>) or given, found none")
    checkpoint = open_checkpoint(note, logs)
    text, signatures = split_note(note)
    cosigned: list[str] = []
    timestamps: list[int] = []
    for witness in policy.witnesses:
        line = next((s for s in signatures if witness.key.matches(s)), None)
        if line is None:
            continue
        try:
            cosignature = parse_line(line)
            witness.key.verify(text, cosignature)
        except (ValidationError, SignatureError) as e:
            raise SignatureError(f"witness {witness.name!r}: {e}") from e
        cosigned.append(witness.name)
        timestamps.append(cosignature.timestamp)
    if not policy.satisfied(frozenset(cosigned)):
        raise SignatureError(
            f"expected cosignatures satisfying the quorum {policy.describe()} on "
            f"{checkpoint.origin} at size {checkpoint.size}, found valid cosignatures by "
            f"{sorted(cosigned) or 'no policy witness'}"
        )
    return CosignedCheckpoint(checkpoint, tuple(cosigned), tuple(timestamps))


def check_export(lines: Iterable[bytes | str], policy: Policy) -> CosignedCheckpoint:
    """`check` on the latest checkpoint of an audit export (node.ledger.export), with the
    export header's keys as the log keys when the policy names none. The rest of the
    export is `audit verify`'s to check; this reads only the header and checkpoint lines.
    Raises SignatureError when the export holds no checkpoint or the quorum fails."""
    header: dict[str, object] | None = None
    latest: tuple[int, str] | None = None
    for raw in lines:
        if (
            not (
                raw.startswith(b'{"type":"checkpoint"')
                if isinstance(raw, bytes)
                else raw.startswith('{"type":"checkpoint"')
            )
            and header is not None
        ):
            continue
        try:
            obj = json.loads(raw)
        except ValueError as e:
            raise ValidationError(f"expected an audit export line, found invalid JSON: {e}") from e
        if header is None:
            if not isinstance(obj, dict) or obj.get("type") != "header":
                raise ValidationError("expected an audit export starting with its header")
            header = obj
        elif isinstance(obj, dict) and isinstance(obj.get("note"), str):
            latest = (int(obj.get("size", 0)), obj["note"])
    if header is None or latest is None:
        raise SignatureError("expected a signed checkpoint in the export to check, found none")
    vkeys = {str(header.get("vkey", "")), str(header.get("current_vkey", ""))} - {""}
    log_keys = [parse_note_vkey(v) for v in sorted(vkeys)]
    return check(latest[1].encode("utf-8"), policy, log_keys)


def _arity(args: list[str], least: int, most: int) -> None:
    if not least <= len(args) <= most:
        raise ValidationError(f"expected {least} to {most} fields, found {len(args)}")


def _new_name(name: str, defined: set[str]) -> None:
    if name in defined:
        raise ValidationError(f"expected a new name, found {name!r} defined already")
    defined.add(name)


def _known(name: str, defined: set[str]) -> None:
    if name not in defined:
        raise ValidationError(f"expected a name defined on an earlier line, found {name!r}")


def _group(args: list[str], defined: set[str]) -> Group:
    if len(args) < 3:
        raise ValidationError("expected group <name> all|any|<k> <member>...")
    name, rule, members = args[0], args[1], tuple(args[2:])
    for member in members:
        _known(member, defined)
        if member == NONE:
            raise ValidationError("expected witnesses or groups as members, found 'none'")
    if len(set(members)) != len(members):
        raise ValidationError(f"expected each member of group {name!r} once")
    if rule == "all":
        threshold = len(members)
    elif rule == "any":
        threshold = 1
    elif (
        rule.isascii()
        and rule.isdigit()
        and rule == str(int(rule))
        and 1 <= int(rule) <= len(members)
    ):
        threshold = int(rule)
    else:
        raise ValidationError(
            f"expected all, any or a number from 1 to {len(members)} in group {name!r}, "
            f"found {rule[:16]!r}"
        )
    _new_name(name, defined)
    return Group(name, threshold, members)
