"""Node cards: the small file operators exchange to pin each other by hand.

A card names a node and carries its Ed25519 verify key and its TLS certificate. It is
public: no secret is ever written to it. Format (JSON, versioned):

    {"format": "lapor-node-card/v1", "node_id": "id-64", "name": "...",
     "signing_key": "<base64 raw Ed25519 public key>", "tls_certificate": "<PEM>"}
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from node.crypto.signing import VerifyKey
from node.crypto.tls import fingerprint, node_id_from_certificate
from node.errors import ValidationError
from node.ids import NodeId, parse_node_id

__all__ = ["CARD_FORMAT", "NodeCard"]

CARD_FORMAT = "lapor-node-card/v1"


@dataclass(frozen=True)
class NodeCard:
    node_id: NodeId
    name: str
    signing_key: VerifyKey
    tls_cert_pem: bytes

    @property
    def tls_fingerprint(self) -> bytes:
        return fingerprint(self.tls_cert_pem)

    def to_json(self) -> str:
        return (
            json.dumps(
                {
                    "format": CARD_FORMAT,
                    "node_id": self.node_id,
                    "name": self.name,
                    "signing_key": base64.b64encode(self.signing_key.raw).decode(),
                    "tls_certificate": self.tls_cert_pem.decode(),
                },
                indent=2,
            )
            + "\n"
        )

    @classmethod
    def from_json(cls, text: str) -> NodeCard:
        """Parse and check a card: the certificate must name the card's node id."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValidationError(f"node card is not JSON: {e.msg} at line {e.lineno}") from e
        if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
            raise ValidationError(f"not a node card: expected format {CARD_FORMAT!r}")
        missing = [
            k
            for k in ("node_id", "name", "signing_key", "tls_certificate")
            if not isinstance(data.get(k), str)
        ]
        if missing:
            raise ValidationError(f"node card lacks {', '.join(missing)}")
        node_id = parse_node_id(data["node_id"])
        try:
            raw = base64.b64decode(data["signing_key"], validate=True)
        except ValueError as e:  # binascii.Error, and non-ASCII text
            raise ValidationError("node card signing_key is not base64") from e
        cert = data["tls_certificate"].encode()
        named = node_id_from_certificate(cert)
        if named != node_id:
            raise ValidationError(f"node card says {node_id!r} but its certificate names {named!r}")
        return cls(node_id, data["name"], VerifyKey(raw), cert)
