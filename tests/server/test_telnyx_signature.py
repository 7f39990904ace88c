"""The Telnyx signature check on its own: both forms of the key, and signatures of every shape.

The whole-call tests drive it through the server; here are the inputs that are
awkward to send through a stack: a PEM key, and signatures that are base64 but
not 64 bytes long (libsodium refuses those before checking anything).
"""

from __future__ import annotations

import base64
import time

import pytest
from cryptography.hazmat.primitives import serialization

from engine.core.errors import VoxflowError
from engine.server.telnyx import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookRefused,
    load_public_key,
    verify_signature,
)
from tests.server.support import TelnyxSigner

BODY = b"CallSid=v3%3Aabc&From=%2B15557654321&To=%2B15550001000&CallStatus=ringing"


def _pem(signer: TelnyxSigner) -> str:
    return (
        signer.private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.mark.parametrize("form", ["base64", "pem"])
def test_a_delivery_signed_by_the_account_is_accepted_with_either_form_of_the_key(
    form: str,
) -> None:
    signer = TelnyxSigner()
    key = load_public_key(signer.public_base64 if form == "base64" else _pem(signer))
    delivery = verify_signature(key, signer.headers(BODY), BODY, time.time())
    assert len(delivery.nonce) == 64
    with pytest.raises(WebhookRefused) as refused:
        verify_signature(key, TelnyxSigner().headers(BODY), BODY, time.time())
    assert (refused.value.status, refused.value.reason) == (401, "forged")


@pytest.mark.parametrize("signature", [b"", b"x" * 63, b"x" * 65, b"\0" * 64])
def test_a_signature_of_the_wrong_length_or_content_is_forged_not_a_crash(
    signature: bytes,
) -> None:
    signer = TelnyxSigner()
    key = load_public_key(signer.public_base64)
    headers = {**signer.headers(BODY), SIGNATURE_HEADER: base64.b64encode(signature).decode() or "AA=="}
    with pytest.raises(WebhookRefused) as refused:
        verify_signature(key, headers, BODY, time.time())
    assert refused.value.status == 401
    assert refused.value.reason in ("forged", "malformed")


def test_the_timestamp_is_checked_after_the_signature() -> None:
    signer = TelnyxSigner()
    key = load_public_key(signer.public_base64)
    old = int(time.time()) - 400
    with pytest.raises(WebhookRefused) as refused:
        verify_signature(key, signer.headers(BODY, old), BODY, time.time())
    assert refused.value.reason == "stale"
    forged_and_old = {**TelnyxSigner().headers(BODY, old), TIMESTAMP_HEADER: str(old)}
    with pytest.raises(WebhookRefused) as refused:
        verify_signature(key, forged_and_old, BODY, time.time())
    assert refused.value.reason == "forged"  # a forger learns nothing about our clock


@pytest.mark.parametrize(
    "text",
    [
        "not a key",
        base64.b64encode(b"short").decode(),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ],
)
def test_a_key_that_is_not_an_ed25519_public_key_is_explained(text: str) -> None:
    with pytest.raises(VoxflowError) as error:
        load_public_key(text)
    assert "TELNYX_PUBLIC_KEY is not an Ed25519 public key" in str(error.value)
    assert "Mission Control" in str(error.value)
