"""The NATS layer against servers that demand TLS and credentials, set up by the suite itself: a test
certificate authority, and an operator, account and user signed as `nsc` would sign them (JWTs
whose credentials file the layer reads from the secret)."""

import base64
import datetime
import hashlib
import json
import os
import time

import nkeys
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from local.nats_server import NatsServer
from tokenmeter.core import UsageEvent
from tokenmeter.nats import ManagedConnection, NatsSettings, NatsUnavailable, publish_events

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nats"
PASSWORD = "s3cret-Pa55word-for-nats"


def certificate_authority(folder, name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            # Python 3.13 verifies strictly (VERIFY_X509_STRICT): key identifiers and usage, as real CAs issue them.
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    path = folder / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def server_certificate(folder, ca_key, ca_cert):
    """A certificate for 127.0.0.1 and localhost, signed by the test CA."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nats")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    return folder / "server.pem", folder / "server.key"


@pytest.fixture
def tls_files(tmp_path):
    ca_key, ca_cert, ca_file = certificate_authority(tmp_path, "test-ca")
    _, _, other_ca = certificate_authority(tmp_path, "other-ca")
    cert, key = server_certificate(tmp_path, ca_key, ca_cert)
    return {"ca": ca_file, "other_ca": other_ca, "cert": cert, "key": key}


def attempt(url, secret=None, ca_file=None):
    """Connect through the layer and store one event; the event's status, or the layer's error."""
    connection = ManagedConnection(NatsSettings(url=url, connect_timeout_seconds=2, ca_file=ca_file and str(ca_file),
                                                creds_secret_arn=SECRET_ARN if secret else None),
                                   secret_loader=lambda arn: {SECRET_ARN: secret}[arn])
    event = UsageEvent(f"{time.time_ns():032x}-input", "sub_acme", "llm_tokens", "1794744000.000",
                       {"tokens": 7, "model": "m", "token_type": "input"})

    async def publish():
        await connection.jetstream()
        [outcome] = await publish_events(connection.client, [event], connection.settings, timeout=5)
        return outcome.status

    try:
        return connection.run(publish())
    except NatsUnavailable as exc:
        return exc
    finally:
        connection.run(connection.close())
        connection.loop.close()


def test_tls_server_verified_with_the_configured_ca_and_credentials(tmp_path, tls_files):
    config = (f'tls {{ cert_file: "{tls_files["cert"]}", key_file: "{tls_files["key"]}" }}\n'
              f'authorization {{ user: "metering", password: "{PASSWORD}" }}')
    server = NatsServer(tmp_path / "js", config=config).start()
    secret = json.dumps({"user": "metering", "password": PASSWORD})
    try:
        assert attempt(server.url, secret, tls_files["ca"]) == "stored"
        assert attempt(f"tls://127.0.0.1:{server.port}", secret, tls_files["ca"]) == "stored"
        for refused in (attempt(server.url, secret, tls_files["other_ca"]),  # a certificate we do not trust
                        attempt(f"tls://127.0.0.1:{server.port}", secret),  # the system CAs do not know the test CA
                        attempt(server.url, secret)):  # plain connection to a server that demands TLS
            assert isinstance(refused, NatsUnavailable), refused
            assert PASSWORD not in str(refused)
        without = attempt(server.url, None, tls_files["ca"])
        assert isinstance(without, NatsUnavailable) and "uthorization" in str(without)
    finally:
        server.stop()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_jwt(issuer, subject: str, name: str, nats_claims: dict) -> str:
    """A NATS v2 JWT (header alg ed25519-nkey), signed with the issuer's nkey."""
    claims = {"iat": int(time.time()), "iss": issuer.public_key.decode(), "name": name, "sub": subject,
              "nats": {**nats_claims, "version": 2}}
    claims["jti"] = base64.b32encode(hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()).decode()
    signing_input = f"{_b64(json.dumps({'typ': 'JWT', 'alg': 'ed25519-nkey'}).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(issuer.sign(signing_input.encode()))}"


def new_key(prefix):
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    return nkeys.from_seed(bytearray(seed)), seed.decode()


def operator_mode(account_limits: dict) -> tuple[str, str]:
    """nats-server config for an operator with one JetStream account, and a user's .creds text."""
    operator, _ = new_key(nkeys.PREFIX_BYTE_OPERATOR)
    account, _ = new_key(nkeys.PREFIX_BYTE_ACCOUNT)
    user, user_seed = new_key(nkeys.PREFIX_BYTE_USER)
    operator_jwt = signed_jwt(operator, operator.public_key.decode(), "test-operator", {"type": "operator"})
    account_jwt = signed_jwt(operator, account.public_key.decode(), "metering", {"type": "account", "limits": {
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True, "conn": -1,
        "leaf": -1, **account_limits}})
    user_jwt = signed_jwt(account, user.public_key.decode(), "lambda", {
        "type": "user", "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1})
    system, _ = new_key(nkeys.PREFIX_BYTE_ACCOUNT)  # JetStream needs the server's system account
    system_jwt = signed_jwt(operator, system.public_key.decode(), "SYS", {"type": "account", "limits": {
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True, "conn": -1}})
    config = (f"operator: {operator_jwt}\nsystem_account: {system.public_key.decode()}\nresolver: MEMORY\n"
              f"resolver_preload: {{ {account.public_key.decode()}: {account_jwt}, "
              f"{system.public_key.decode()}: {system_jwt} }}\n")
    creds = (f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
             "************************* IMPORTANT *************************\n"
             "NKEY Seed printed below can be used to sign and prove identity.\n\n"
             f"-----BEGIN USER NKEY SEED-----\n{user_seed}\n------END USER NKEY SEED------\n")
    return config, creds


def test_creds_file_from_the_secret_is_accepted_and_nothing_else_is(tmp_path):
    config, creds = operator_mode({"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1})
    server = NatsServer(tmp_path / "js", config=config).start()
    try:
        assert attempt(server.url, creds) == "stored"
        assert attempt(server.url, json.dumps({"creds": creds})) == "stored"
        refused = attempt(server.url, None)
        assert isinstance(refused, NatsUnavailable) and "uthorization" in str(refused)
        _, stranger = operator_mode({"mem_storage": -1, "disk_storage": -1})  # signed by an operator it never saw
        refused = attempt(server.url, stranger)
        assert isinstance(refused, NatsUnavailable)
        assert "SU" not in str(refused) and "eyJ" not in str(refused)  # neither seed nor JWT in the error
    finally:
        server.stop()
