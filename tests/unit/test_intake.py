"""The pure parts of intake: attachment refs, the chunk receiver, the canonical request
hash, submissions from the wire, idempotency keys, tokens, and the `intake:` config."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from node._proto.lapor.v1 import complaint_pb2, intake_pb2
from node.complaints import AttachmentRef, ComplaintDraft
from node.config import IntakeConfig, load_config, render_config
from node.errors import ConfigError, TooLargeError, ValidationError
from node.federation.intake_client import Upload, submission_for
from node.ids import NodeId, format_tracking_id, parse_tracking_id, tracking_origin
from node.services import intake

LIMITS = IntakeConfig(max_attachment_bytes=1000, max_total_bytes=1500)
DATA = b"0123456789" * 60  # 600 bytes


def _ref(data: bytes = DATA, name: str = "foto.jpg") -> AttachmentRef:
    return AttachmentRef(name, "image/jpeg", len(data), hashlib.sha256(data).digest())


def _draft(**changes: object) -> ComplaintDraft:
    draft = ComplaintDraft(
        title="Puskesmas tutup",
        description="Puskesmas tutup pada jam kerja",
        classification="pengaduan",
        category="kesehatan",
        region_code="64.72",
        channel="web",
        reporter_name="Budi",
    )
    return replace(draft, **changes)  # type: ignore[arg-type]


# --- attachment refs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        pytest.param(replace(_ref(), name=""), "name", id="empty-name"),
        pytest.param(replace(_ref(), name="../etc/passwd"), "name", id="slash-in-name"),
        pytest.param(replace(_ref(), name=" foto.jpg"), "name", id="padded-name"),
        pytest.param(replace(_ref(), name="a\nb"), "name", id="control-in-name"),
        pytest.param(replace(_ref(), media_type="JPEG"), "media type", id="bad-media-type"),
        pytest.param(replace(_ref(), size=0), "size", id="empty-file"),
        pytest.param(replace(_ref(), sha256=b"x" * 31), "sha256", id="short-hash"),
    ],
)
def test_a_malformed_attachment_ref_is_refused(ref: AttachmentRef, message: str) -> None:
    """Each malformed field of an attachment ref is named in the refusal."""
    with pytest.raises(ValidationError, match=message):
        _draft(attachments=(ref,)).validate()


def test_the_same_file_twice_is_refused() -> None:
    """Two attachments with one SHA-256 are refused: send each file once."""
    with pytest.raises(ValidationError, match="same file"):
        _draft(attachments=(_ref(), _ref(name="copy.jpg"))).validate()


def test_attachment_refs_are_part_of_the_content() -> None:
    """The content (and so its commitment) lists each attachment's ref."""
    content = _draft(attachments=(_ref(),)).content()
    assert [AttachmentRef.from_proto(a) for a in content.attachments] == [_ref()]
    assert _draft().content().SerializeToString() != content.SerializeToString()


# --- the receiver ----------------------------------------------------------------------------


def test_chunks_in_order_give_back_the_files() -> None:
    """Chunks of each declared file in order, of any size: the files, checked."""
    other = b"abc" * 100
    receiver = intake.AttachmentReceiver([_ref(), _ref(other, "b.jpg")], LIMITS)
    for start in range(0, len(DATA), 7):
        receiver.add(0, DATA[start : start + 7])
    receiver.add(1, other)
    received = receiver.finish()
    assert [r.data for r in received] == [DATA, other]


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        pytest.param([(0, DATA + b"!")], "larger than its declared size", id="too-long"),
        pytest.param([(0, DATA[:-1])], "ended after 599 bytes", id="too-short"),
        pytest.param([(0, DATA[:-1] + b"!")], "does not match its declared SHA-256", id="hash"),
        pytest.param([(1, DATA)], r"declared 1 attachment\(s\)", id="unknown-index"),
        pytest.param([(0, b"")], "empty", id="empty-chunk"),
        pytest.param([], "ended after 0 bytes", id="nothing-sent"),
    ],
)
def test_wrong_bytes_are_refused(chunks: list[tuple[int, bytes]], message: str) -> None:
    """Too many or too few bytes, another hash, a chunk for no declared file: refused."""
    receiver = intake.AttachmentReceiver([_ref()], LIMITS)
    with pytest.raises(ValidationError, match=message):
        for index, data in chunks:
            receiver.add(index, data)
        receiver.finish()


def test_a_file_is_closed_when_the_next_begins() -> None:
    """Going back to an earlier file is refused; moving on checks the one before."""
    receiver = intake.AttachmentReceiver([_ref(), _ref(b"x" * 10, "b.jpg")], LIMITS)
    receiver.add(0, DATA)
    receiver.add(1, b"x" * 5)
    with pytest.raises(ValidationError, match="declared order"):
        receiver.add(0, b"more")
    truncated = intake.AttachmentReceiver([_ref(), _ref(b"x" * 10, "b.jpg")], LIMITS)
    truncated.add(0, DATA[:100])
    with pytest.raises(ValidationError, match="attachment 0 ended after 100 bytes"):
        truncated.add(1, b"x")


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        pytest.param([_ref(b"x" * 1001)], "at most 1000 bytes per file", id="file"),
        pytest.param(
            [_ref(b"x" * 800), _ref(b"y" * 800, "b.jpg")], "at most 1500 bytes per", id="total"
        ),
    ],
)
def test_declared_sizes_over_the_limits_are_refused_before_any_byte(
    declared: list[AttachmentRef], message: str
) -> None:
    """Files over the node's limits are refused from their declaration (RESOURCE_EXHAUSTED)."""
    with pytest.raises(TooLargeError, match=message):
        intake.AttachmentReceiver(declared, LIMITS)


def test_a_walk_in_file_goes_through_the_same_checks(tmp_path: Path) -> None:
    """A file read for `complaint submit --attach` gets its ref and the size limit."""
    path = tmp_path / "surat.pdf"
    path.write_bytes(DATA)
    received = intake.read_file_attachment(path, LIMITS)
    assert received.ref == AttachmentRef("surat.pdf", "application/pdf", 600, _ref().sha256)
    path.write_bytes(b"x" * 1001)
    with pytest.raises(TooLargeError, match=r"surat\.pdf is 1001 bytes"):
        intake.read_file_attachment(path, LIMITS)


# --- submissions, keys, tokens ---------------------------------------------------------------


def test_a_submission_round_trips_to_the_same_draft() -> None:
    """What a gateway sends (built by the client) is read back as the draft it came from."""
    upload = Upload("foto.jpg", "image/jpeg", DATA)
    draft = _draft(anonymous=True, location="Jl. Juanda")
    submission = submission_for(draft, "k-1", [upload])
    assert intake.draft_from_submission(submission) == replace(draft, attachments=(_ref(),))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"channel": 0}, "channel", id="no-channel"),
        pytest.param({"classification": 99}, "classification", id="bad-classification"),
        pytest.param({"region_code": "Samarinda"}, "region code", id="bad-region"),
        pytest.param({"category": ""}, "category", id="no-category"),
    ],
)
def test_a_malformed_submission_is_refused(change: dict[str, object], message: str) -> None:
    """Each malformed field of a Submission is named."""
    submission = submission_for(_draft(), "k-1")
    for key, value in change.items():
        setattr(submission, key, value)
    with pytest.raises(ValidationError, match=message):
        intake.draft_from_submission(submission)


def test_attachments_inside_the_content_are_refused() -> None:
    """Files are declared in Submission.attachments only; the node fills the content's."""
    submission = submission_for(_draft(), "k-1")
    submission.content.attachments.append(_ref().to_proto())
    with pytest.raises(ValidationError, match=r"content\.attachments must be empty"):
        intake.draft_from_submission(submission)


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("sms-1708-0001", True),
        ("018f3c1e-7d7a-7b3e-9c1a-3b8e2f0a9d11", True),
        ("twitter:1801234567890", True),
        ("", False),
        ("with space", False),
        ("x" * 129, False),
        ("kunci/rahasia", False),
    ],
)
def test_idempotency_keys(key: str, ok: bool) -> None:
    """Keys are 1 to 128 characters of a small safe alphabet."""
    if ok:
        intake.validate_key(key)
    else:
        with pytest.raises(ValidationError, match="idempotency_key"):
            intake.validate_key(key)


def test_the_request_hash_is_canonical_and_covers_every_field() -> None:
    """Equal drafts hash equal; any change of field or attachment changes the hash."""
    base = _draft(attachments=(_ref(),))
    assert intake.request_hash(base) == intake.request_hash(replace(base))
    variants = [
        replace(base, title="Puskesmas tutup lagi"),
        replace(base, channel="api"),
        replace(base, anonymous=True),
        replace(base, attachments=(replace(_ref(), name="lain.jpg"),)),
        replace(base, attachments=()),
    ]
    hashes = {intake.request_hash(v) for v in variants}
    assert len(hashes) == len(variants)
    assert intake.request_hash(base) not in hashes


def test_a_token_names_its_gateway_by_hash_only(tmp_path: Path) -> None:
    """A fresh token is found by its SHA-256; another token finds no gateway."""
    token = intake.new_token()
    assert token.startswith(intake.TOKEN_PREFIX) and token != intake.new_token()
    config = _load_intake(
        tmp_path,
        f'    - {{name: sms, channels: [sms_1708], token_sha256: "'
        f'{intake.token_sha256(token).hex()}"}}\n',
    )
    found = intake.gateway_for(config, token)
    assert found is not None and found.name == "sms" and found.channels == ("sms_1708",)
    assert intake.gateway_for(config, intake.new_token()) is None


def test_tracking_ids_are_unique_across_the_federation() -> None:
    """Two nodes numbering the same year and serial give different ids, each naming its
    origin: no coordination is needed for ids to be unique across the tree."""
    ids = {
        format_tracking_id(NodeId(node), 2026, 1) for node in ("id", "id-64", "id-64-02", "id-72")
    }
    assert len(ids) == 4
    for tracking_id in ids:
        assert tracking_id.startswith(tracking_origin(parse_tracking_id(tracking_id)) + ".")


# --- node.yaml -----------------------------------------------------------------------------

HASH = "ab" * 32


def _load_intake(folder: Path, gateways: str, extra: str = "") -> IntakeConfig:
    text = render_config("id-64", "X", listen="127.0.0.1:7411")
    text += f'\nintake:\n  listen: "127.0.0.1:7466"\n{extra}  gateways:\n{gateways}'
    (folder / "node.yaml").write_text(text)
    return load_config(folder / "node.yaml").intake


def test_intake_is_off_by_default(tmp_path: Path) -> None:
    """A fresh node.yaml has intake off, with the default limits and no gateways."""
    path = tmp_path / "node.yaml"
    path.write_text(render_config("id-64", "X"))
    config = load_config(path)
    assert config.intake == IntakeConfig()
    assert not config.intake.enabled


@pytest.mark.parametrize(
    ("gateways", "extra", "message"),
    [
        pytest.param(
            f'    - {{name: a, channels: [walk_in], token_sha256: "{HASH}"}}\n',
            "",
            "channels must be",
            id="walk-in-channel",
        ),
        pytest.param(
            "    - {name: a, channels: [web], token_sha256: abc}\n",
            "",
            "64 hex digits",
            id="short-hash",
        ),
        pytest.param(
            f'    - {{name: a, channels: [web], token_sha256: "{HASH}"}}\n'
            f'    - {{name: a, channels: [api], token_sha256: "{"cd" * 32}"}}\n',
            "",
            "listed twice",
            id="same-name",
        ),
        pytest.param(
            f'    - {{name: a, channels: [web], token_sha256: "{HASH}"}}\n'
            f'    - {{name: b, channels: [api], token_sha256: "{HASH}"}}\n',
            "",
            "same token",
            id="same-token",
        ),
        pytest.param(
            f'    - {{name: "A B", channels: [web], token_sha256: "{HASH}"}}\n',
            "",
            "lowercase slug",
            id="bad-name",
        ),
        pytest.param(
            f'    - {{name: a, channels: [web], token: "{HASH}"}}\n',
            "",
            "unknown key",
            id="token-not-hash",
        ),
        pytest.param(
            "",
            "  max_attachment_bytes: 100\n  max_total_bytes: 50\n",
            "at least",
            id="total-below-file",
        ),
    ],
)
def test_a_bad_intake_section_is_refused(
    tmp_path: Path, gateways: str, extra: str, message: str
) -> None:
    """Each mistake in `intake:` is refused at load, naming what to fix."""
    with pytest.raises(ConfigError, match=message):
        _load_intake(tmp_path, gateways or "    []\n", extra)


def test_intake_must_not_share_the_federation_port(tmp_path: Path) -> None:
    """intake.listen on server.listen is refused."""
    folder = tmp_path
    text = render_config("id-64", "X", listen="127.0.0.1:7411")
    text += 'intake:\n  listen: "127.0.0.1:7411"\n'
    (folder / "node.yaml").write_text(text)
    with pytest.raises(ConfigError, match="must differ"):
        load_config(folder / "node.yaml")


def test_protos_keep_the_submission_small() -> None:
    """A Submission without files stays far below one chunk's size limit."""
    submission = submission_for(_draft(description="x" * 20_000), "k")
    assert len(intake_pb2.SubmitRequest(submission=submission).SerializeToString()) < 64 * 1024
    assert complaint_pb2.AttachmentRef(size=1).size == 1
