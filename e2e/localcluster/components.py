"""How each control-plane process is started: binary, flags, log file and health endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import config, kwokstages
from .pki import FRONT_PROXY_CLIENT, Pki

SA_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass
class Component:
    name: str
    binary: str
    args: list[str]
    health_url: str | None  # polled until it answers 200 "ok"
    health_needs_client_cert: bool = False
    depends_on: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # added to the environment it starts with

    @property
    def cmd(self) -> list[str]:
        return [self.binary, *self.args]


@dataclass(frozen=True)
class Layout:
    """Every path under the state dir."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def pki_dir(self) -> Path:
        return self.root / "pki"

    @property
    def kubeconfigs(self) -> Path:
        return self.root / "kubeconfigs"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def prometheus_dir(self) -> Path:
        return self.root / "prometheus"

    @property
    def targets_dir(self) -> Path:
        return self.prometheus_dir / "targets"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def component_kubeconfig(self, name: str) -> Path:
        return self.kubeconfigs / f"{name}.kubeconfig"


def aggregation_flags(pki: Pki) -> list[str]:
    """The aggregation layer (APIService -> an extension API server such as KEDA's metrics server).

    On for every cluster: it costs one CA and one client certificate, and with it an add-on can join
    a cluster that is already up. No --enable-aggregator-routing: an out-of-cluster server is reached
    through an ExternalName Service (localhost), which only the default ClusterIP-style resolver
    supports; routing to endpoints would need an EndpointSlice, and those refuse loopback addresses.
    """
    return [
        f"--requestheader-client-ca-file={pki.front_proxy_ca_crt}",
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User",
        f"--proxy-client-cert-file={pki.crt(FRONT_PROXY_CLIENT)}",
        f"--proxy-client-key-file={pki.key(FRONT_PROXY_CLIENT)}",
    ]


def control_plane(lay: Layout, pki: Pki, ports: dict[str, int]) -> list[Component]:
    """The components in start order. ports: etcd, etcd-peer, kube-apiserver, kube-controller-manager,
    kube-scheduler, kwok."""
    b = config.binary
    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    etcd = Component(
        "etcd", str(b("etcd")),
        [
            "--name=default", f"--data-dir={lay.etcd_data}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}", "--initial-cluster-state=new",
            "--unsafe-no-fsync=true",  # test cluster: speed over durability
            "--quota-backend-bytes=4294967296", "--log-level=warn",
        ],
        health_url=f"{etcd_url}/health",
    )
    apiserver = Component(
        "kube-apiserver", str(b("kube-apiserver")),
        [
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={ports['kube-apiserver']}",
            f"--cert-dir={lay.pki_dir}",
            f"--tls-cert-file={pki.crt('apiserver')}", f"--tls-private-key-file={pki.key('apiserver')}",
            f"--client-ca-file={pki.ca_crt}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={config.SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true", "--profiling=false", "--v=1",
            *aggregation_flags(pki),
        ],
        health_url=f"https://127.0.0.1:{ports['kube-apiserver']}/readyz",
        health_needs_client_cert=True,
        depends_on=["etcd"],
    )
    kcm = Component(
        "kube-controller-manager", str(b("kube-controller-manager")),
        [
            f"--kubeconfig={lay.component_kubeconfig('kube-controller-manager')}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['kube-controller-manager']}",
            "--leader-elect=false", "--controllers=*", "--use-service-account-credentials=true",
            f"--root-ca-file={pki.ca_crt}", f"--service-account-private-key-file={pki.sa_key}",
            f"--cluster-signing-cert-file={pki.ca_crt}", f"--cluster-signing-key-file={pki.ca_key}",
            f"--service-cluster-ip-range={config.SERVICE_CLUSTER_IP_RANGE}",
            "--kube-api-qps=100", "--kube-api-burst=200", "--profiling=false", "--v=1",
        ],
        health_url=f"https://127.0.0.1:{ports['kube-controller-manager']}/healthz",
        depends_on=["kube-apiserver"],
    )
    scheduler = Component(
        "kube-scheduler", str(b("kube-scheduler")),
        [
            f"--kubeconfig={lay.component_kubeconfig('kube-scheduler')}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['kube-scheduler']}",
            "--leader-elect=false", "--profiling=false", "--v=1",
        ],
        health_url=f"https://127.0.0.1:{ports['kube-scheduler']}/healthz",
        depends_on=["kube-apiserver"],
    )
    # KWOK's pod stages: its defaults plus the model-cache download pods' (kwokstages.py).
    kwok_config = kwokstages.write(lay.root / "kwok-stages.yaml")
    kwok = Component(
        "kwok", str(b("kwok")),
        [
            f"--kubeconfig={lay.component_kubeconfig('kwok')}", f"--config={kwok_config}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={config.KWOK_ANNOTATION}={config.KWOK_ANNOTATION_VALUE}",
            f"--cidr={config.POD_CIDR}", "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{ports['kwok']}",
        ],
        health_url=f"http://127.0.0.1:{ports['kwok']}/healthz",
        depends_on=["kube-apiserver"],
    )
    return [etcd, apiserver, kcm, scheduler, kwok]


PORT_NAMES = ["etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
