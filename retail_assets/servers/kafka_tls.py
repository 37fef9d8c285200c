"""The cluster profile broker's TLS material and SCRAM credentials (docs/profiles.md, Kafka).

A CA and a broker certificate (for 127.0.0.1 and localhost, usable as server and as client:
the broker's controller listener requires one) are made with openssl on the first start and
kept under `$RETAIL_HOME/kafka/tls`, keys mode 0600. SCRAM users are written into the log
when it is formatted, as salted credentials: the passwords themselves are on no command line.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import subprocess
from pathlib import Path

from retail_assets.servers.supervisor import ServiceError

MECHANISM = "SCRAM-SHA-512"
ITERATIONS = 8192
CA_DAYS, CERT_DAYS = 3650, 825


def scram_credential(user: str, password: str, iterations: int = ITERATIONS) -> str:
    """Kafka's `--add-scram` argument for `user`, salted (RFC 5802: Hi = PBKDF2 with the
    mechanism's HMAC), so the password is not on the format command's line."""
    salt = secrets.token_bytes(32)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    salt_text, salted_text = (base64.b64encode(value).decode() for value in (salt, salted))
    return (f"{MECHANISM}=[name={user},iterations={iterations},"
            f'salt="{salt_text}",saltedpassword="{salted_text}"]')  # fmt: skip


class Certificates:
    """The files of `folder`: the CA's certificate (what clients trust), and the broker's
    keystore (its private key, then its certificate chain, PEM)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.ca = folder / "ca.pem"
        self.ca_key = folder / "ca.key"
        self.keystore = folder / "broker-keystore.pem"

    def ensure(self) -> None:
        """Make the CA and the broker's certificate once; a later start keeps them."""
        if self.ca.exists() and self.keystore.exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        key, request, certificate, extensions = (
            self.folder / name for name in ("broker.key", "broker.csr", "broker.pem", "broker.ext")
        )
        extensions.write_text(
            "basicConstraints = CA:FALSE\n"
            "keyUsage = critical, digitalSignature, keyEncipherment\n"
            "extendedKeyUsage = serverAuth, clientAuth\n"
            "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        )
        openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.ca_key,
                 "-out", self.ca, "-days", CA_DAYS, "-subj", "/CN=retail-assets local CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign"])  # fmt: skip
        openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request,
                 "-subj", "/CN=localhost"])  # fmt: skip
        openssl(["x509", "-req", "-in", request, "-CA", self.ca, "-CAkey", self.ca_key,
                 "-CAcreateserial", "-out", certificate, "-days", CERT_DAYS,
                 "-extfile", extensions])  # fmt: skip
        descriptor = os.open(self.keystore, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as keystore:
            keystore.write(key.read_text() + certificate.read_text() + self.ca.read_text())
        for made in (key, request, extensions):
            made.unlink()


def openssl(arguments: list) -> None:
    """Run openssl; keys it writes are private to us (umask 077)."""
    command = ["openssl", *map(str, arguments)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, umask=0o077, timeout=60)
    except FileNotFoundError as error:
        raise ServiceError(
            "the cluster profile's broker needs openssl for its certificates: "
            "apt-get install -y openssl"
        ) from error
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines() or ["no output"]
        raise ServiceError(f"making the broker's certificates failed: {reason[-1]}")
