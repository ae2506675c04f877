"""Certificates for the local control plane, made with the openssl CLI (ECDSA P-256, fast).

One CA signs the apiserver's serving certificate and one client certificate per component;
the admin (used by kubectl, tests, kopf and helm) is in group system:masters.
A second CA, the front-proxy CA, signs only the client certificate the apiserver presents when it
proxies to an aggregated API server (the aggregation layer; KEDA's metrics server is one).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import config

DAYS = "3650"

# name -> (CN, O or None). Components authenticate with these; RBAC bootstrap knows their names.
CLIENTS: dict[str, tuple[str, str | None]] = {
    "admin": ("modelfleet-admin", "system:masters"),
    "kube-controller-manager": ("system:kube-controller-manager", None),
    "kube-scheduler": ("system:kube-scheduler", None),
    "kwok": ("kwok-controller", "system:masters"),
}


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca_crt(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    def crt(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"

    @property
    def front_proxy_ca_crt(self) -> Path:
        return self.crt(FRONT_PROXY_CA)


def _openssl(*args: str, cwd: Path) -> None:
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{res.stderr.strip()}")


FRONT_PROXY_CA = "front-proxy-ca"
FRONT_PROXY_CLIENT = "front-proxy-client"  # its CN is --requestheader-allowed-names
CLIENT_EXT = ("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
              "extendedKeyUsage=clientAuth")


def _leaf(d: Path, name: str, subj: str, ext: str, ca: str = "ca") -> None:
    """Key and certificate `name` signed by CA `ca` (files <ca>.crt and <ca>.key in d)."""
    # Key identifiers: Python >= 3.13 verifies strictly (RFC 5280) and wants them.
    (d / f"{name}.ext").write_text(
        f"[ext]\n{ext}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    _openssl("req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj, cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-days", DAYS, "-sha256", "-extfile", f"{name}.ext", "-extensions", "ext",
             "-out", f"{name}.crt", cwd=d)
    (d / f"{name}.csr").unlink()
    (d / f"{name}.ext").unlink()


def _ca(d: Path, name: str, cn: str) -> None:
    (d / f"{name}.cnf").write_text(
        f"[req]\ndistinguished_name=dn\nprompt=no\nx509_extensions=v3_ca\n[dn]\nCN={cn}\n"
        "[v3_ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n"
        "subjectKeyIdentifier=hash\n"
    )
    _openssl("req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", DAYS, "-sha256", "-config", f"{name}.cnf",
             cwd=d)


def server_and_client(d: Path, name: str, cn: str, sans: list[str], org: str | None = None) -> None:
    """A certificate from the cluster CA that serves TLS for `sans` and also authenticates as a client
    (CN `cn`, group `org`): KEDA's operator and metrics server share one such pair for their mTLS."""
    subj = f"/O={org}/CN={cn}" if org else f"/CN={cn}"
    _leaf(d, name, subj, "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                         f"extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName={','.join(sans)}")
    (d / f"{name}.key").chmod(0o600)


def create(d: Path) -> Pki:
    """Create fresh CAs, serving and client certificates and the service-account key pair in d."""
    d.mkdir(parents=True, exist_ok=True)
    _ca(d, "ca", "modelfleet-local-ca")
    sans = ",".join([
        "IP:127.0.0.1", f"IP:{config.KUBERNETES_SERVICE_IP}", "DNS:localhost", "DNS:kubernetes",
        "DNS:kubernetes.default", "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local",
    ])
    _leaf(d, "apiserver", "/CN=kube-apiserver",
          "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
          f"extendedKeyUsage=serverAuth\nsubjectAltName={sans}")
    for name, (cn, org) in CLIENTS.items():
        subj = f"/O={org}/CN={cn}" if org else f"/CN={cn}"
        _leaf(d, name, subj, CLIENT_EXT)
    # The aggregation layer: a CA of its own, so no ordinary client certificate can pass as the proxy.
    _ca(d, FRONT_PROXY_CA, "modelfleet-front-proxy-ca")
    _leaf(d, FRONT_PROXY_CLIENT, f"/CN={FRONT_PROXY_CLIENT}", CLIENT_EXT, ca=FRONT_PROXY_CA)
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "sa.key", cwd=d)
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)
    for f in d.glob("*.key"):
        f.chmod(0o600)
    return Pki(d)
