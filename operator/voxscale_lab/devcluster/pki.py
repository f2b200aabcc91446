"""A throw-away PKI for the local control plane: one CA, serving and client certs, an SA key."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Every component runs on loopback, but in-cluster clients know the API as kubernetes.default.svc.
API_DNS_NAMES = (
    "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
API_IPS = ("127.0.0.1", "10.96.0.1")
VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True)
class Identity:
    """A client certificate subject: Kubernetes reads CN as the user and O as the groups."""

    file_stem: str
    user: str
    groups: tuple[str, ...] = ()


# The users the control plane and the tests authenticate as. kwok plays many kubelets at once, so
# it can't be one `system:node:<name>` user; it gets cluster-admin like in kwok's own setups.
IDENTITIES = (
    Identity("admin", "kubernetes-admin", ("system:masters",)),
    Identity("controller-manager", "system:kube-controller-manager"),
    Identity("scheduler", "system:kube-scheduler"),
    Identity("kwok", "kwok-controller", ("system:masters",)),
)


@dataclass(frozen=True)
class Pki:
    """Paths of everything `write_pki` made; `client(stem)` gives (cert, key) of an identity."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    sa_key: Path
    sa_pub: Path

    def client(self, stem: str) -> tuple[Path, Path]:
        return self.directory / f"{stem}.crt", self.directory / f"{stem}.key"


def _key() -> ec.EllipticCurvePrivateKey:
    # P-256 keys are generated in ~1 ms; 2048-bit RSA takes ~100 ms each on this machine.
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
    ))
    path.chmod(0o600)


def _name(common: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _builder(subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey,
             now: datetime.datetime) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY))


Leaf = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _leaf(ca_key: ec.EllipticCurvePrivateKey, ca_name: x509.Name, subject: x509.Name, *,
          usage: x509.ObjectIdentifier, now: datetime.datetime,
          sans: list[x509.GeneralName] | None = None) -> Leaf:
    key = _key()
    builder = (_builder(subject, ca_name, key.public_key(), now)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def write_pki(directory: Path, now: datetime.datetime) -> Pki:
    """Make the CA, the apiserver serving cert, one client cert per identity and the SA key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory, directory / "ca.crt", directory / "ca.key", directory / "apiserver.crt",
              directory / "apiserver.key", directory / "sa.key", directory / "sa.pub")
    ca_key, ca_name = _key(), _name("voxscale-dev-ca")
    ca = (_builder(ca_name, ca_name, ca_key.public_key(), now)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    _write_cert(pki.ca_cert, ca)
    _write_key(pki.ca_key, ca_key)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in API_DNS_NAMES]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in API_IPS]
    serving, serving_key = _leaf(ca_key, ca_name, _name("kube-apiserver"),
                                 usage=ExtendedKeyUsageOID.SERVER_AUTH, now=now, sans=sans)
    _write_cert(pki.serving_cert, serving)
    _write_key(pki.serving_key, serving_key)
    for ident in IDENTITIES:
        cert, key = _leaf(ca_key, ca_name, _name(ident.user, ident.groups),
                          usage=ExtendedKeyUsageOID.CLIENT_AUTH, now=now)
        cert_path, key_path = pki.client(ident.file_stem)
        _write_cert(cert_path, cert)
        _write_key(key_path, key)
    # Service-account tokens are signed with RS256 by default, so this key is RSA.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(pki.sa_key, sa_key)
    pki.sa_pub.write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return pki
