"""Drives a KMIP server with PyKMIP's ProxyKmipClient (Debian's python3-pykmip) over mutual TLS.

Usage: client.py HOST PORT CERT KEY CA VERSIONS SCENARIO NAME
VERSIONS is a comma-separated list of 1.2, 1.4 and 2.0 (one client each, in turn, so one python
start serves them all); SCENARIO is "full" (the acceptance walk), "create" (one Create, to see a
refusal), "make" (create and activate an AES-256 key named NAME and encrypt a fixed message) or
"use" (find the key named NAME, get it and encrypt and decrypt the fixed message, perhaps on another
node or after a restore: the same ciphertext as "make" printed proves the same key), or "extras"
(register an X.509 certificate and get it back; a wrapped Get with NIST Key Wrap under another key,
unwrapped here with python3-cryptography; a wrapping key without Wrap Key in its mask refused), or
"rekey" (ReKey with an Offset: the replacement's state, name and dates; at 2.0 also
Set Attribute of the usage mask). Prints one JSON object per step on stdout with its version, so the calling test can check
each one; a failed step prints {"step": "failed", "error": {"status", "reason", "message"}} and that
version's walk stops.
The key material and plaintexts stay inside this process: only lengths and equalities are printed.
"""

import enum
import json
import sys

from kmip import enums
from kmip.pie import client as pie_client
from kmip.pie import exceptions as pie_exceptions
from kmip.pie import objects

VERSIONS = {
    "1.2": enums.KMIPVersion.KMIP_1_2,
    "1.4": enums.KMIPVersion.KMIP_1_4,
    "2.0": enums.KMIPVersion.KMIP_2_0,
}


CURRENT = {"version": ""}


def emit(step, **fields):
    print(json.dumps({"version": CURRENT["version"], "step": step, **fields}), flush=True)


def attribute_values(result):
    """get_attributes' list as {name: printable value}."""
    values = {}
    for attribute in result[1]:
        name = attribute.attribute_name.value
        value = attribute.attribute_value
        if name == "Name":
            value = value.name_value.value
        elif hasattr(value, "value"):
            value = value.value
        values[name] = value.name if isinstance(value, enum.Enum) else value
    return values


def full(client, name):
    uid = client.create(enums.CryptographicAlgorithm.AES, 256, name=name,
                        cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT,
                                                  enums.CryptographicUsageMask.DECRYPT])
    emit("create", uid=uid)
    client.activate(uid)
    emit("activate")
    first = client.get(uid)
    second = client.get(uid)
    emit("get", length=len(first.value), same=first.value == second.value,
         algorithm=first.cryptographic_algorithm.name, bits=first.cryptographic_length)
    found = client.locate(attributes=[client.attribute_factory.create_attribute(enums.AttributeType.NAME, name)])
    emit("locate", ids=found, exact=found == [uid])
    attrs = client.get_attributes(uid, ["Name", "Cryptographic Algorithm", "Cryptographic Length", "State", "Object Type"])
    emit("get_attributes", uid=attrs[0], attributes=attribute_values(attrs))
    names = client.get_attribute_list(uid)
    emit("get_attribute_list", has_state="State" in names, has_name="Name" in names)
    message = b"sixteen byte msg and more: a block and a half"
    iv = bytes(range(16))
    params = {"block_cipher_mode": enums.BlockCipherMode.CBC,
              "padding_method": enums.PaddingMethod.PKCS5,
              "cryptographic_algorithm": enums.CryptographicAlgorithm.AES}
    ciphertext, _ = client.encrypt(message, uid=uid, cryptographic_parameters=params, iv_counter_nonce=iv)
    plaintext = client.decrypt(ciphertext, uid=uid, cryptographic_parameters=params, iv_counter_nonce=iv)
    local = first.value
    emit("encrypt_decrypt", round_trip=plaintext == message, ciphertext_length=len(ciphertext),
         matches_local=ciphertext == cbc_encrypt(local, iv, message))
    secret_uid = client.register(objects.SecretData(b"a database password", enums.SecretDataType.PASSWORD, name=name + "-secret"))
    secret = client.get(secret_uid)
    emit("register_secret", uid=secret_uid, same=secret.value == b"a database password")
    public_uid, private_uid = client.create_key_pair(enums.CryptographicAlgorithm.RSA, 2048,
                                                     public_name=name + "-pub", private_name=name + "-priv",
                                                     public_usage_mask=[enums.CryptographicUsageMask.VERIFY],
                                                     private_usage_mask=[enums.CryptographicUsageMask.SIGN])
    client.activate(private_uid)
    client.activate(public_uid)
    sign_params = {"padding_method": enums.PaddingMethod.PSS,
                   "cryptographic_algorithm": enums.CryptographicAlgorithm.RSA,
                   "hashing_algorithm": enums.HashingAlgorithm.SHA_256}
    signature = client.sign(b"signed words", uid=private_uid, cryptographic_parameters=sign_params)
    good = client.signature_verify(b"signed words", signature, uid=public_uid, cryptographic_parameters=sign_params)
    bad = client.signature_verify(b"other words", signature, uid=public_uid, cryptographic_parameters=sign_params)
    emit("sign_verify", good=good.name, bad=bad.name)
    client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
    emit("revoke")
    client.destroy(uid)
    emit("destroy")
    after = client.locate(attributes=[client.attribute_factory.create_attribute(enums.AttributeType.NAME, name)])
    emit("locate_after_destroy", ids=after)


def cbc_encrypt(key, iv, message):
    """An independent AES-CBC/PKCS#7 (python3-cryptography) to compare the server's ciphertext with."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    padder = padding.PKCS7(128).padder()
    padded = padder.update(message) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def create_only(client, name):
    uid = client.create(enums.CryptographicAlgorithm.AES, 128, name=name)
    emit("create", uid=uid)


FIXED_MESSAGE = b"one key, every node, every copy"
FIXED_IV = bytes(range(16))
CBC = {"block_cipher_mode": enums.BlockCipherMode.CBC,
       "padding_method": enums.PaddingMethod.PKCS5,
       "cryptographic_algorithm": enums.CryptographicAlgorithm.AES}


def make(client, name):
    uid = client.create(enums.CryptographicAlgorithm.AES, 256, name=name,
                        cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT,
                                                  enums.CryptographicUsageMask.DECRYPT])
    client.activate(uid)
    ciphertext, _ = client.encrypt(FIXED_MESSAGE, uid=uid, cryptographic_parameters=CBC, iv_counter_nonce=FIXED_IV)
    emit("make", uid=uid, ciphertext=ciphertext.hex())


def use(client, name):
    found = client.locate(attributes=[client.attribute_factory.create_attribute(enums.AttributeType.NAME, name)])
    if len(found) != 1:
        emit("use", found=found)
        return
    uid = found[0]
    key = client.get(uid).value
    ciphertext, _ = client.encrypt(FIXED_MESSAGE, uid=uid, cryptographic_parameters=CBC, iv_counter_nonce=FIXED_IV)
    plaintext = client.decrypt(ciphertext, uid=uid, cryptographic_parameters=CBC, iv_counter_nonce=FIXED_IV)
    emit("use", uid=uid, ciphertext=ciphertext.hex(), round_trip=plaintext == FIXED_MESSAGE,
         matches_local=ciphertext == cbc_encrypt(key, FIXED_IV, FIXED_MESSAGE))


def self_signed_der(name):
    """A throwaway EC P-256 certificate, made here (python3-cryptography), DER."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(1)
                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.DER)


def wrapping_spec(wrapping_uid):
    return {"wrapping_method": enums.WrappingMethod.ENCRYPT,
            "encryption_key_information": {
                "unique_identifier": wrapping_uid,
                "cryptographic_parameters": {"block_cipher_mode": enums.BlockCipherMode.NIST_KEY_WRAP}},
            "encoding_option": enums.EncodingOption.NO_ENCODING}


def extras(client, name):
    der = self_signed_der(name)
    cert_uid = client.register(objects.X509Certificate(der, name=name + "-cert"))
    got = client.get(cert_uid)
    emit("certificate", kind=type(got).__name__, same=got.value == der)
    kek_uid = client.create(enums.CryptographicAlgorithm.AES, 256, name=name + "-kek",
                            cryptographic_usage_mask=[enums.CryptographicUsageMask.WRAP_KEY,
                                                      enums.CryptographicUsageMask.UNWRAP_KEY])
    client.activate(kek_uid)
    dek_uid = client.create(enums.CryptographicAlgorithm.AES, 256, name=name + "-dek",
                            cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT,
                                                      enums.CryptographicUsageMask.DECRYPT])
    client.activate(dek_uid)
    plain = client.get(dek_uid).value
    kek = client.get(kek_uid).value
    wrapped = client.get(dek_uid, key_wrapping_specification=wrapping_spec(kek_uid))
    from cryptography.hazmat.primitives import keywrap
    data = wrapped.key_wrapping_data or {}
    emit("wrapped_get", length=len(wrapped.value), differs=wrapped.value != plain,
         unwraps=keywrap.aes_key_unwrap(kek, wrapped.value) == plain,
         method=data.get("wrapping_method").name, encoding=data.get("encoding_option").name,
         wrapping_uid=data.get("encryption_key_information", {}).get("unique_identifier") == kek_uid)
    try:
        client.get(kek_uid, key_wrapping_specification=wrapping_spec(dek_uid))
        emit("wrap_without_mask", refused=False)
    except pie_exceptions.KmipOperationFailure as e:
        emit("wrap_without_mask", refused=True, reason=e.reason.name)


def rekey(client, name):
    usage = [enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT]
    old_uid = client.create(enums.CryptographicAlgorithm.AES, 256, name=name, cryptographic_usage_mask=usage)
    client.activate(old_uid)
    new_uid = client.rekey(uid=old_uid, offset=3600)
    # PyKMIP's client cannot read Link values (NotImplementedError): the links are checked over the wire.
    new = client.get_attributes(new_uid, ["State", "Activation Date", "Initial Date", "Name"])
    values = {a.attribute_name.value: a.attribute_value for a in new[1]}
    emit("rekey", differs=new_uid != old_uid, state=values["State"].value.name,
         name=values["Name"].name_value.value,
         offset=values["Activation Date"].value - values["Initial Date"].value)
    if CURRENT["version"] == "2.0":
        client.set_attribute(unique_identifier=new_uid, attribute_name="Cryptographic Usage Mask",
                             attribute_value=[enums.CryptographicUsageMask.ENCRYPT])
        mask = client.get_attributes(new_uid, ["Cryptographic Usage Mask"])[1][0].attribute_value.value
        emit("set_attribute", mask=mask)


def main():
    host, port, cert, key, ca, versions, scenario, name = sys.argv[1:9]
    for version in versions.split(","):
        CURRENT["version"] = version
        walk(host, port, cert, key, ca, version, scenario, name + "-" + version)


def walk(host, port, cert, key, ca, version, scenario, name):
    client = pie_client.ProxyKmipClient(hostname=host, port=int(port), cert=cert, key=key, ca=ca,
                                        config_file="/dev/null", kmip_version=VERSIONS[version])
    step = "open"
    try:
        client.open()
        emit("open")
        {"full": full, "create": create_only, "make": make, "use": use, "extras": extras, "rekey": rekey}[scenario](client, name)
    except pie_exceptions.KmipOperationFailure as e:
        emit("failed", error={"status": e.status.name, "reason": e.reason.name, "message": e.message})
    except Exception as e:  # the connection or the TLS handshake
        emit("failed", error={"status": "Exception", "reason": type(e).__name__, "message": str(e)[:200]})
    finally:
        try:
            client.close()
        except Exception:
            pass


if __name__ == "__main__":
    main()
