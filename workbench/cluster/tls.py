"""Mutual TLS for a cluster's Dask scheduler, workers and clients (distributed's ``Security``).

``cluster up`` makes a fresh certificate authority for the cluster and signs one certificate for
the scheduler, one for clients on this machine and one per node; the CA's private key is never
written anywhere, so no one can sign another member later (the next ``cluster up`` makes a new
CA). The files live in ``<cluster file stem>.tls/`` next to the cluster file (the directory mode
0700, private keys 0600); each node's certificate and key go over SFTP, mode 0600, into
``data_dir/.workbench/tls/``. Every connection is ``tls://`` with both sides' certificates checked
against the cluster's CA; a peer without a certificate signed by it is refused.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.cluster.inventory import Cluster, Node
from workbench.errors import ClusterError

if TYPE_CHECKING:
    from distributed import Security

VALID_DAYS = 365
#: Dask's own switch: refuse any unencrypted connection (scheduler and workers get it in their environment).
REQUIRE_ENCRYPTION_ENV = {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True"}


@dataclass(frozen=True)
class Identity:
    """One member's certificate files (PEM): the cluster's CA, its certificate, its private key."""

    ca: Path | str
    cert: Path | str
    key: Path | str

    def dask_args(self) -> list[str]:
        """The ``dask scheduler`` / ``dask worker`` options that make it use these files."""
        return ["--tls-ca-file", str(self.ca), "--tls-cert", str(self.cert), "--tls-key", str(self.key)]


def tls_dir(cluster_file: str | os.PathLike[str]) -> Path:
    p = Path(cluster_file).resolve()
    return p.parent / f"{p.stem}.tls"


def member(cluster_file: str | os.PathLike[str], name: str) -> Identity:
    """The files of ``scheduler``, ``client`` or ``node-NAME`` in the cluster's TLS directory."""
    d = tls_dir(cluster_file)
    return Identity(d / "ca.pem", d / f"{name}.pem", d / f"{name}-key.pem")


def node_identity(node: Node) -> Identity:
    """Where a node keeps its copies of the files (under its ``data_dir``)."""
    d = f"{node.data_dir}/.workbench/tls"
    return Identity(f"{d}/ca.pem", f"{d}/node.pem", f"{d}/node-key.pem")


def generate(cluster: Cluster, days: int = VALID_DAYS) -> Path:
    """A new CA and certificates for the scheduler, the client and every node; returns the directory."""
    from cryptography.hazmat.primitives.asymmetric import ec

    d = tls_dir(cluster.path)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(mode=0o700)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate(f"workbench cluster CA ({cluster.path.name})", ca_key.public_key(), ca_key, None,
                           now, days, ca=True)
    _write(d / "ca.pem", _pem(ca_cert), 0o644)
    members = {"scheduler": [cluster.coordinator], "client": ["client"]}
    members.update({f"node-{n.name}": [n.name, n.host] for n in cluster.nodes})
    for name, hosts in members.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(f"workbench {name}", key.public_key(), ca_key, ca_cert, now, days, hosts=hosts)
        _write(d / f"{name}.pem", _pem(cert), 0o644)
        _write(d / f"{name}-key.pem", _pem_key(key), 0o600)
    return d


def client_security(cluster_file: str | os.PathLike[str]) -> "Security":
    """The ``Security`` of a client of the cluster's scheduler (this machine's client certificate)."""
    ident = member(cluster_file, "client")
    if not all(Path(p).is_file() for p in (ident.ca, ident.cert, ident.key)):
        raise ClusterError(f"no TLS certificates for {Path(cluster_file).resolve()} in {tls_dir(cluster_file)}; "
                           f"restart the cluster (`workbench cluster down` and `up`)")
    return security(ident)


def security(ident: Identity) -> "Security":
    """Mutual TLS with encryption required, as a client with ``ident``'s certificate."""
    from distributed import Security

    return Security(tls_ca_file=str(ident.ca), tls_client_cert=str(ident.cert), tls_client_key=str(ident.key),
                    require_encryption=True)


async def send_to_node(conn: Any, cluster: Cluster, node: Node) -> Identity:
    """Copy the node's certificate, key and the CA over SFTP (mode 0600); returns their paths there."""
    import asyncssh

    local, remote = member(cluster.path, f"node-{node.name}"), node_identity(node)
    async with conn.start_sftp_client() as sftp:
        await sftp.makedirs(str(Path(str(remote.ca)).parent), attrs=asyncssh.SFTPAttrs(permissions=0o700),
                            exist_ok=True)
        for src, dst in ((local.ca, remote.ca), (local.cert, remote.cert), (local.key, remote.key)):
            part = f"{dst}.part"
            async with sftp.open(part, "wb", attrs=asyncssh.SFTPAttrs(permissions=0o600)) as fh:
                await fh.write(Path(src).read_bytes())
            await sftp.chmod(part, 0o600)  # whatever the node's umask or an older file left
            await sftp.posix_rename(part, str(dst))
    return remote


# -- pieces ------------------------------------------------------------------------------
def _certificate(common_name: str, public_key: Any, signer_key: Any, signer: Any, now: datetime.datetime,
                 days: int, *, ca: bool = False, hosts: list[str] | None = None) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(signer.subject if signer is not None else subject)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                                      key_encipherment=False, data_encipherment=False,
                                                      key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                      encipher_only=False, decipher_only=False), critical=True)
    else:  # every member both serves and connects (scheduler <-> workers <-> workers)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts or []]), critical=False)
    return builder.sign(signer_key, hashes.SHA256())


def _san(host: str) -> Any:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _pem(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (a key is never readable by others, even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), mode)
        fh.write(data)
