"""Envelope encryption with an in-memory key store: round trips, binding of associated
data, rotation that keeps old data readable, and crypto-shredding."""

from __future__ import annotations

import base64
import os

import pytest

from driftline_core.crypto import (
    DataKeyring,
    FieldCipher,
    KeyDestroyedError,
    LocalKek,
    MemoryKeyStore,
)
from driftline_core.crypto.cipher import DecryptionError
from driftline_core.crypto.kek import KekSettings, kek_from_settings


@pytest.fixture
def store() -> MemoryKeyStore:
    return MemoryKeyStore()


@pytest.fixture
def cipher(store: MemoryKeyStore) -> FieldCipher:
    return FieldCipher(DataKeyring(store, LocalKek(os.urandom(32))))


async def test_a_field_round_trips_and_only_wrapped_keys_are_stored(cipher, store):
    token = await cipher.encrypt("acme", "feature:ssn", "evt-1", b"123-45-6789")
    assert b"123-45-6789" not in token.encode()
    assert await cipher.decrypt("acme", "feature:ssn", "evt-1", token) == b"123-45-6789"
    [stored] = store.keys.values()
    assert stored.wrapped is not None
    assert len(stored.wrapped) == 12 + 32 + 16  # nonce, key, tag: never the bare key


@pytest.mark.parametrize(
    ("tenant", "purpose", "record"),
    [
        ("other", "feature:ssn", "evt-1"),
        ("acme", "feature:name", "evt-1"),
        ("acme", "feature:ssn", "evt-2"),
    ],
)
async def test_a_ciphertext_moved_to_another_tenant_purpose_or_record_does_not_decrypt(
    cipher, tenant, purpose, record
):
    token = await cipher.encrypt("acme", "feature:ssn", "evt-1", b"secret")
    with pytest.raises((DecryptionError, KeyDestroyedError)):
        await cipher.decrypt(tenant, purpose, record, token)


async def test_rotation_encrypts_new_data_under_the_new_key_and_old_data_stays_readable(
    cipher, store
):
    keyring = cipher._keyring
    old = await cipher.encrypt("acme", "p", "r1", b"old")
    assert await keyring.rotate("acme") == 2
    new = await cipher.encrypt("acme", "p", "r2", b"new")
    assert (FieldCipher.key_version(old), FieldCipher.key_version(new)) == (1, 2)
    assert await cipher.decrypt("acme", "p", "r1", old) == b"old"
    assert await cipher.decrypt("acme", "p", "r2", new) == b"new"


async def test_crypto_shredding_makes_every_version_unreadable_and_stops_new_writes(cipher, store):
    keyring = cipher._keyring
    t1 = await cipher.encrypt("acme", "p", "r1", b"one")
    await keyring.rotate("acme")
    t2 = await cipher.encrypt("acme", "p", "r2", b"two")
    other = await cipher.encrypt("globex", "p", "r1", b"theirs")
    assert await keyring.destroy("acme") == 2
    for token, record in ((t1, "r1"), (t2, "r2")):
        with pytest.raises(KeyDestroyedError):
            await cipher.decrypt("acme", "p", record, token)
    with pytest.raises(KeyDestroyedError):
        await cipher.encrypt("acme", "p", "r3", b"new")
    assert await cipher.decrypt("globex", "p", "r1", other) == b"theirs"


async def test_a_destroyed_key_stops_working_in_another_process_after_its_cache_expires(store):
    kek = LocalKek(os.urandom(32))
    writer = FieldCipher(DataKeyring(store, kek, cache_ttl_s=0))
    reader_ring = DataKeyring(store, kek, cache_ttl_s=0)
    token = await writer.encrypt("acme", "p", "r", b"x")
    assert await FieldCipher(reader_ring).decrypt("acme", "p", "r", token) == b"x"
    await DataKeyring(store, kek).destroy("acme")
    with pytest.raises(KeyDestroyedError):
        await FieldCipher(reader_ring).decrypt("acme", "p", "r", token)


async def test_a_different_kek_cannot_unwrap_the_keys(store):
    token = await FieldCipher(DataKeyring(store, LocalKek(os.urandom(32)))).encrypt(
        "acme", "p", "r", b"x"
    )
    from cryptography.exceptions import InvalidTag

    with pytest.raises(InvalidTag):
        await FieldCipher(DataKeyring(store, LocalKek(os.urandom(32)))).decrypt(
            "acme", "p", "r", token
        )


def test_kek_from_passphrase_is_deterministic_for_its_salt():
    salt = base64.b64encode(b"0123456789abcdef").decode()
    s = KekSettings(passphrase="correct horse battery staple", salt_b64=salt)
    a, b = kek_from_settings(s), kek_from_settings(s)
    assert a.unwrap(b.wrap(b"k" * 32, b"aad"), b"aad") == b"k" * 32


async def test_garbage_tokens_are_refused_clearly(cipher):
    with pytest.raises(DecryptionError, match="not a Driftline ciphertext"):
        await cipher.decrypt("acme", "p", "r", "not-a-token")
