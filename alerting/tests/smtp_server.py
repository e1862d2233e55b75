"""An SMTP server for the email receiver tests (aiosmtpd): STARTTLS required
(a self-signed certificate made at start), AUTH PLAIN required as
USER / PASSWORD (aiosmtpd's LOGIN challenges are not the `Username:` that
Go's and Alertmanager's LOGIN expect), every message accepted and printed, parsed by Python's own
`email` package, as one JSON line on stdout:
{"mail_from", "rcpt_tos", "subject", "from", "to", "headers": {...},
 "content_type", "parts": [{"content_type", "body"}]}

Usage: smtp_server.py USER PASSWORD   (with the venv of scripts/python-env)
Prints {"port": N} first, then serves until killed.
"""
import datetime
import email
import email.policy
import json
import os
import socket
import ssl
import sys
import tempfile
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(directory):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


class Printer:
    async def handle_DATA(self, server, session, envelope):
        m = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = [{"content_type": p.get_content_type(), "body": p.get_content()}
                 for p in (m.iter_parts() if m.is_multipart() else [m])]
        print(json.dumps({
            "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
            "subject": str(m["Subject"]), "from": str(m["From"]), "to": str(m["To"]),
            "headers": {k: str(v) for k, v in m.items()}, "content_type": m.get_content_type(),
            "parts": parts}), flush=True)
        return "250 OK"


def main():
    user, password = sys.argv[1], sys.argv[2]

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok)

    context = self_signed(tempfile.mkdtemp())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Printer(), hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, authenticator=authenticator, auth_required=True,
                            auth_require_tls=True, auth_exclude_mechanism=["LOGIN"])
    controller.start()
    print(json.dumps({"port": port}), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
