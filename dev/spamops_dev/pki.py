"""Throw-away certificates for loopback servers (API server, webhooks): one CA per cluster, via openssl.

openssl rather than a Python package: the control plane must start from a plain
checkout with the standard library only (``make cluster-up`` before any venv).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
SERVER_USAGE = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
CLIENT_USAGE = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"


def openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is required to generate the test cluster's certificates: apt-get install openssl")
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_ca(d: Path, name: str = "ca", cn: str = "spamops-envtest-ca") -> None:
    """``d/{name}.crt`` + ``.key``: a self-signed CA valid two days."""
    d.mkdir(parents=True, exist_ok=True)
    openssl(
        "req", "-x509", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={cn}", cwd=d
    )


def issue(d: Path, name: str, subject: str, extensions: str, ca: str = "ca") -> tuple[Path, Path]:
    """``d/{name}.crt`` + ``.key`` signed by ``d/{ca}.crt``; ``extensions`` is an openssl extfile body."""
    openssl("req", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
    (d / f"{name}.ext").write_text(extensions)
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
        "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=d,
    )  # fmt: skip
    return d / f"{name}.crt", d / f"{name}.key"


def loopback_server(d: Path, name: str, cn: str, extra_dns: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """A serving certificate for 127.0.0.1 / localhost (plus ``extra_dns``)."""
    sans = ",".join(["IP:127.0.0.1", "DNS:localhost", *(f"DNS:{n}" for n in extra_dns)])
    return issue(d, name, f"/CN={cn}", SERVER_USAGE + f"subjectAltName={sans}\n")


def generate_control_plane_pki(d: Path) -> None:
    """CA, API server serving cert, admin client cert (O=system:masters), service-account key pair."""
    make_ca(d)
    loopback_server(d, "apiserver", "kube-apiserver", ("kubernetes.default.svc",))
    issue(d, "admin", "/CN=envtest-admin/O=system:masters", CLIENT_USAGE)
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "sa.key", cwd=d)
    openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)
