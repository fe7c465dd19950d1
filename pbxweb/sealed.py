"""Data handed to one user for a short while, held server-side only as ciphertext: an import's upload
between its preview and its import, the SIP passwords an import generated until they are downloaded.

`seal` encrypts with a fresh random key (AES-256-GCM) and returns a token that carries the key; the key is
kept nowhere else — not in the database, not in a log (tokens travel in form bodies, never in a URL) — so
the database alone cannot read what it holds. `open_once` decrypts and deletes in the caller's
transaction: once that commits, the token opens nothing more; a rollback leaves it to be tried again.
Past its hour it opens nothing, and the next seal or open deletes it (in that caller's transaction).
"""

import base64
import re
import secrets
from datetime import timedelta

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .ext import db
from .models import SealedData, utcnow
from .validation import ValidationError

LIFETIME = timedelta(hours=1)
NONCE_BYTES = 12
# "<id>.<key>": 16 random bytes of id and the 32-byte key, base64url without padding.
TOKEN = re.compile(r"([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})")


def _associated_data(sealed_id: str, purpose: str, user_id: int) -> bytes:
    # Bound into the tag: a ciphertext moved to another row, purpose or user does not decrypt.
    return f"{sealed_id}\n{purpose}\n{user_id}".encode()


def _delete_expired() -> None:
    # SKIP LOCKED: a purge never waits on (or deadlocks with) a request that holds one of these rows.
    expired = sa.select(SealedData.id).where(SealedData.expires_at <= utcnow()).with_for_update(skip_locked=True)
    db.session.execute(sa.delete(SealedData).where(SealedData.id.in_(expired)))


def seal(purpose: str, user_id: int, data: bytes) -> str:
    """Keep `data` for `user_id` for an hour, in the caller's transaction; returns the token that opens it."""
    _delete_expired()
    sealed_id = secrets.token_urlsafe(16)
    key = AESGCM.generate_key(bit_length=256)
    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, data, _associated_data(sealed_id, purpose, user_id))
    db.session.add(SealedData(id=sealed_id, purpose=purpose, user_id=user_id, ciphertext=nonce + ciphertext,
                              expires_at=utcnow() + LIFETIME))
    return f"{sealed_id}.{base64.urlsafe_b64encode(key).rstrip(b'=').decode()}"


def open_once(purpose: str, user_id: int, token: str | None) -> bytes | None:
    """What `token` sealed for this user and purpose, its row deleted in the caller's transaction; None
    when it opens nothing (expired, opened already, another user's, a wrong key). A 400 naming `token`
    when it is no token at all."""
    match = TOKEN.fullmatch(token or "")
    if match is None:
        raise ValidationError({"token": "is missing or is not a token this site handed out"})
    sealed_id, key = match.group(1), base64.urlsafe_b64decode(match.group(2) + "=")
    _delete_expired()
    # Locked: of two requests with the same token (a double click), the second waits and finds it gone.
    ciphertext = db.session.scalar(
        sa.select(SealedData.ciphertext)
        .where(SealedData.id == sealed_id, SealedData.purpose == purpose, SealedData.user_id == user_id,
               SealedData.expires_at > utcnow())
        .with_for_update()
    )
    if ciphertext is None:
        return None
    try:
        data = AESGCM(key).decrypt(ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:],
                                   _associated_data(sealed_id, purpose, user_id))
    except InvalidTag:
        return None
    db.session.execute(sa.delete(SealedData).where(SealedData.id == sealed_id))
    return data
