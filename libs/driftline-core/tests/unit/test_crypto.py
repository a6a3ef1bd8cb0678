"""Envelope encryption with an in-memory key store: round trips, binding of associated
data, rotation that keeps old data readable, and crypto-shredding."""

from __future__ import annotations

import base64
import os
from dataclasses import replace
from types import SimpleNamespace

import pytest

from driftline_core.crypto import (
    DataKeyring,
    FieldCipher,
    KeyDestroyedError,
    LocalKek,
    MemoryKeyStore,
)
from driftline_core.crypto.cipher import DecryptionError
from driftline_core.crypto.kek import (
    AwsKmsKek,
    AzureKeyVaultKek,
    GcpKmsKek,
    KekSettings,
    kek_from_settings,
)
from driftline_core.errors import ConfigurationError


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
    assert a.current.unwrap(b.current.wrap(b"k" * 32, b"aad"), b"aad") == b"k" * 32


async def test_garbage_tokens_are_refused_clearly(cipher):
    with pytest.raises(DecryptionError, match="not a Driftline ciphertext"):
        await cipher.decrypt("acme", "p", "r", "not-a-token")


async def test_kek_rotation_rewraps_data_keys_without_touching_data(store):
    """Data encrypted before a KEK rotation stays readable: first through the retired KEK,
    then (after `rewrap`) through the new one alone."""
    old_b64 = base64.b64encode(os.urandom(32)).decode()
    new_b64 = base64.b64encode(os.urandom(32)).decode()
    before = FieldCipher(DataKeyring(store, kek_from_settings(KekSettings(key_b64=old_b64))))
    token = await before.encrypt("acme", "p", "r", b"secret")

    rotated = KekSettings(key_id="local-2", key_b64=new_b64, retired={"local-1": old_b64})
    ring = DataKeyring(store, kek_from_settings(rotated), cache_ttl_s=0)
    assert await FieldCipher(ring).decrypt("acme", "p", "r", token) == b"secret"
    assert await ring.rewrap() == 1
    assert await ring.rewrap() == 0  # idempotent
    [stored] = store.keys.values()
    assert stored.kek_id == "local-2"

    only_new = DataKeyring(store, kek_from_settings(KekSettings(key_id="local-2", key_b64=new_b64)))
    assert await FieldCipher(only_new).decrypt("acme", "p", "r", token) == b"secret"
    forgot = DataKeyring(store, kek_from_settings(KekSettings(key_b64=old_b64)), cache_ttl_s=0)
    with pytest.raises(ConfigurationError, match="neither current nor retired"):
        await FieldCipher(forgot).decrypt("acme", "p", "r", token)


class _FakeAwsKms:
    """The two boto3 KMS calls, with AES-GCM inside and the encryption context as AAD."""

    def __init__(self) -> None:
        self.key = LocalKek(os.urandom(32))
        self.calls: list[tuple[str, dict[str, str]]] = []

    def encrypt(self, *, KeyId, Plaintext, EncryptionContext):
        self.calls.append(("encrypt", EncryptionContext))
        return {"CiphertextBlob": self.key.wrap(Plaintext, repr(EncryptionContext).encode())}

    def decrypt(self, *, KeyId, CiphertextBlob, EncryptionContext):
        self.calls.append(("decrypt", EncryptionContext))
        return {"Plaintext": self.key.unwrap(CiphertextBlob, repr(EncryptionContext).encode())}


class _FakeGcpKms:
    def __init__(self) -> None:
        self.key = LocalKek(os.urandom(32))
        self.names: list[str] = []

    def encrypt(self, request):
        self.names.append(request["name"])
        ct = self.key.wrap(request["plaintext"], request["additional_authenticated_data"])
        return SimpleNamespace(ciphertext=ct)

    def decrypt(self, request):
        pt = self.key.unwrap(request["ciphertext"], request["additional_authenticated_data"])
        return SimpleNamespace(plaintext=pt)


class _FakeAzureCrypto:
    """RSA-OAEP-256 wrap/unwrap as Key Vault's CryptographyClient does it."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def _pad(self):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        return padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)

    def wrap_key(self, algorithm, key):
        assert algorithm == "RSA-OAEP-256"
        return SimpleNamespace(encrypted_key=self.key.public_key().encrypt(key, self._pad()))

    def unwrap_key(self, algorithm, encrypted_key):
        return SimpleNamespace(key=self.key.decrypt(encrypted_key, self._pad()))


@pytest.mark.parametrize(
    "make",
    [
        lambda: AwsKmsKek(_FakeAwsKms(), "arn:aws:kms:eu-west-1:111:key/abc"),
        lambda: GcpKmsKek(_FakeGcpKms(), "projects/p/locations/l/keyRings/r/cryptoKeys/k"),
        lambda: AzureKeyVaultKek(_FakeAzureCrypto(), "https://v.vault.azure.net/keys/k/1"),
    ],
    ids=["aws-kms", "gcp-kms", "azure-keyvault"],
)
async def test_cloud_kms_keks_wrap_data_keys_bound_to_tenant_and_version(make, store):
    kek = make()
    assert kek.remote
    ring = DataKeyring(store, kek, cache_ttl_s=0)
    token = await FieldCipher(ring).encrypt("acme", "p", "r", b"secret")
    assert await FieldCipher(ring).decrypt("acme", "p", "r", token) == b"secret"
    [stored] = store.keys.values()
    assert stored.kek_id.startswith(kek.key_id.split(":")[0])
    # a wrapped key copied to another tenant's row does not unwrap there
    store.keys[("evil", 1)] = replace(stored, tenant_id="evil")
    with pytest.raises(Exception):  # noqa: B017, PT011 - each SDK raises its own error
        await ring.key("evil", 1)


def test_a_cloud_provider_without_its_sdk_or_key_is_a_clear_configuration_error():
    with pytest.raises(ConfigurationError, match="KMS_KEY"):
        kek_from_settings(KekSettings(provider="aws-kms"))
