"""KEDA (operator + external-metrics API server) run beside the control plane, as local processes.

`e2e/cluster up --with-keda` builds KEDA's `cmd/operator` and `cmd/adapter` from the wrapper module
e2e/tools/keda (cached under <cache>/bin/keda-<version>/), applies KEDA's CRDs from its module source
(config/crd/bases in the Go module cache), and starts both processes with a kubeconfig:

- the operator: leader election off, its own certificate rotation off (we issue the certificates),
  the gRPC metrics service on a loopback port;
- the metrics server (KEDA's "adapter"): an aggregated API server on a loopback port, talking mTLS to
  the operator's gRPC service, serving `external.metrics.k8s.io/v1beta1` with a certificate from the
  cluster CA, which the APIService trusts through `caBundle`.

The API server reaches it through a Service of type ExternalName (`localhost`): with the default
service resolver the aggregator dials `<externalName>:<APIService port>` and verifies the serving
certificate for `<service>.<namespace>.svc`. (An EndpointSlice with `--enable-aggregator-routing` would
be the other way, but the API server refuses loopback endpoint addresses.) `up` returns once the
APIService is Available. The pids live in state.json like the control plane's; `down` stops them.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import build, config, kubeconfig, procs, state
from .components import Component, Layout
from .pki import Pki, server_and_client

if TYPE_CHECKING:
    from .cluster import Api, Starter

NAMESPACE = "keda"
OPERATOR, ADAPTER = config.KEDA_BINARIES
NAMES = (OPERATOR, ADAPTER)
METRICS_SERVICE = "keda-metrics-apiserver"
OPERATOR_SERVICE = "keda-operator"
APISERVICE = "v1beta1.external.metrics.k8s.io"
PORT_NAMES = ["keda-operator-metrics", "keda-operator-health", "keda-operator-grpc", "keda-adapter",
              "keda-adapter-metrics"]
CERT = "keda"  # one pair in pki/: serves the gRPC service and the metrics API, and is the adapter's client cert
CRD_NAMES = ("scaledobjects.keda.sh", "scaledjobs.keda.sh", "triggerauthentications.keda.sh",
             "clustertriggerauthentications.keda.sh")
APISERVICE_TIMEOUT = 90.0


def log(msg: str) -> None:
    build.log(msg)


# --------------------------------------------------------------------------- build


def built() -> bool:
    return all(config.binary(b).exists() for b in config.KEDA_BINARIES)


def ensure_built() -> None:
    """Build the operator and the metrics server if missing (call with build.build_lock held)."""
    if built():
        return
    out_dir = config.keda_bin_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"building KEDA {config.KEDA_VERSION} (operator + metrics server): ~17 CPU-minutes with an empty Go "
        "build cache (6.5-9 min on 2 idle cores), under a minute to relink with a warm one")
    env = build.go_env()
    env["GOFLAGS"] = "-mod=mod"
    ldflags = f"-s -w -X {config.KEDA_MODULE}/version.Version={config.KEDA_VERSION}"
    cmd = [build.go_binary(), "build", "-trimpath", "-ldflags", ldflags, "-o", str(out_dir) + "/",
           f"{config.KEDA_MODULE}/cmd/operator", f"{config.KEDA_MODULE}/cmd/adapter"]
    logfile = config.cache_root() / "logs" / "build-keda.log"
    secs = build.run_logged(cmd, cwd=config.keda_module_dir(), env=env, logfile=logfile)
    # go names each binary after its package directory.
    for src, dst in (("operator", OPERATOR), ("adapter", ADAPTER)):
        if (out_dir / src).exists():
            (out_dir / src).replace(out_dir / dst)
    if not built():
        raise build.BuildError(f"go build succeeded but {', '.join(config.KEDA_BINARIES)} are not all in {out_dir}")
    log(f"built KEDA in {secs:.0f}s")


def crd_dir() -> Path:
    """KEDA's CRDs, from its module source (downloaded into the Go module cache by the build)."""
    d = config.keda_source_dir() / "config" / "crd" / "bases"
    if not d.is_dir():
        build.run_logged([build.go_binary(), "mod", "download", f"{config.KEDA_MODULE}@{config.KEDA_VERSION}"],
                         cwd=config.keda_module_dir(), env=build.go_env(),
                         logfile=config.cache_root() / "logs" / "download-keda.log")
    if not d.is_dir():
        raise build.BuildError(f"KEDA's CRDs are not in {d}")
    return d


# --------------------------------------------------------------------------- processes


def cert_dir(lay: Layout) -> Path:
    """ca.crt, tls.crt and tls.key, the file names KEDA reads from --cert-dir."""
    return lay.root / "keda" / "certs"


def _certificates(lay: Layout, p: Pki) -> Path:
    if not p.crt(CERT).exists():
        sans = ["IP:127.0.0.1", "DNS:localhost",
                f"DNS:{METRICS_SERVICE}.{NAMESPACE}.svc", f"DNS:{OPERATOR_SERVICE}.{NAMESPACE}.svc",
                f"DNS:{OPERATOR_SERVICE}.{NAMESPACE}.svc.cluster.local"]
        # system:masters: a local test cluster; KEDA's own RBAC (config/rbac) is not what is under test.
        server_and_client(p.dir, CERT, "keda", sans, org="system:masters")
    d = cert_dir(lay)
    d.mkdir(parents=True, exist_ok=True)
    for src, dst in ((p.ca_crt, "ca.crt"), (p.crt(CERT), "tls.crt"), (p.key(CERT), "tls.key")):
        shutil.copyfile(src, d / dst)
    (d / "tls.key").chmod(0o600)
    return d


def components(lay: Layout, p: Pki, ports: dict[str, int], server: str) -> list[Component]:
    """The operator and the metrics server, in start order."""
    certs = cert_dir(lay)
    kcfg = lay.component_kubeconfig("keda")
    if not kcfg.exists():
        kubeconfig.write(kcfg, server, p, CERT, embed=False)
    env = {"KUBECONFIG": str(kcfg), "WATCH_NAMESPACE": "", "POD_NAMESPACE": NAMESPACE,
           "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE}
    grpc = f"127.0.0.1:{ports['keda-operator-grpc']}"
    operator = Component(
        OPERATOR, str(config.binary(OPERATOR)),
        [
            "--leader-elect=false", "--enable-cert-rotation=false",
            "--enable-webhook-patching=false", "--enable-apiservice-patching=false",
            f"--cert-dir={certs}", f"--ca-dir={certs}",
            f"--metrics-bind-address=127.0.0.1:{ports['keda-operator-metrics']}",
            f"--health-probe-bind-address=127.0.0.1:{ports['keda-operator-health']}",
            f"--metrics-service-bind-address={grpc}",
            "--zap-log-level=info", "--zap-encoder=console",
        ],
        health_url=f"http://127.0.0.1:{ports['keda-operator-health']}/healthz",
        depends_on=["kube-apiserver"], env=env,
    )
    adapter = Component(
        ADAPTER, str(config.binary(ADAPTER)),
        [
            f"--secure-port={ports['keda-adapter']}", "--bind-address=127.0.0.1",
            f"--cert-dir={certs}", f"--tls-cert-file={certs / 'tls.crt'}",
            f"--tls-private-key-file={certs / 'tls.key'}",
            f"--lister-kubeconfig={kcfg}", f"--authentication-kubeconfig={kcfg}",
            f"--authorization-kubeconfig={kcfg}",
            f"--metrics-service-address={grpc}", f"--port={ports['keda-adapter-metrics']}",
            "--zap-log-level=info", "--zap-encoder=console",
        ],
        health_url=f"https://127.0.0.1:{ports['keda-adapter']}/healthz",
        depends_on=[OPERATOR], env=env,
    )
    return [operator, adapter]


def running(st: dict[str, Any]) -> bool:
    """Both KEDA processes recorded in the state are alive."""
    pids, binaries = st.get("pids", {}), st.get("binaries", {})
    return all(pids.get(n) and procs.is_ours(int(pids[n]), binaries[n]) for n in NAMES)


# --------------------------------------------------------------------------- API objects


def _api_objects(p: Pki, adapter_port: int) -> dict[str, Any]:
    ca_bundle = base64.b64encode(p.ca_crt.read_bytes()).decode()
    labels = {"app.kubernetes.io/part-of": "keda-operator", "app.kubernetes.io/managed-by": "e2e-cluster"}
    items = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": labels}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": METRICS_SERVICE, "namespace": NAMESPACE, "labels": labels},
         "spec": {"type": "ExternalName", "externalName": "localhost"}},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": {"name": APISERVICE, "labels": labels},
         "spec": {"service": {"name": METRICS_SERVICE, "namespace": NAMESPACE, "port": adapter_port},
                  "group": "external.metrics.k8s.io", "version": "v1beta1", "caBundle": ca_bundle,
                  "groupPriorityMinimum": 100, "versionPriority": 100}},
    ]
    return {"apiVersion": "v1", "kind": "List", "items": items}


def _kubectl(kcfg: Path, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
    res = subprocess.run([str(config.binary("kubectl")), f"--kubeconfig={kcfg}", *args],
                         input=stdin, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{res.stderr.strip()}")
    return res.stdout


def _established(api: Api, name: str) -> bool:
    status, body = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    conds = (body.get("status") or {}).get("conditions") or [] if status == 200 and isinstance(body, dict) else []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conds)


def install_crds(kcfg: Path, api: Api) -> None:
    """Apply KEDA's CRDs server-side (ScaledObject's is too large for a client-side apply) and wait
    until they are Established."""
    _kubectl(kcfg, "apply", "--server-side", "--force-conflicts", "--field-manager=e2e-cluster", "-f", str(crd_dir()))
    procs.poll(lambda: all(_established(api, n) for n in CRD_NAMES), timeout=60, interval=0.3,
               what=f"KEDA's CRDs Established ({', '.join(CRD_NAMES)})")


def apiservice_available(api: Api) -> str | None:
    """'' when the APIService is Available, else its condition message (None: not there yet)."""
    status, body = api.get(f"/apis/apiregistration.k8s.io/v1/apiservices/{APISERVICE}")
    if status != 200 or not isinstance(body, dict):
        return None
    for cond in body.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Available":
            return "" if cond.get("status") == "True" else f"{cond.get('reason')}: {cond.get('message')}"
    return None


# --------------------------------------------------------------------------- start


def start(lay: Layout, st: dict[str, Any], p: Pki, starter: Starter, api: Api) -> None:
    """Install the CRDs and API objects, start both processes (on their old ports if they ran before)
    and wait until the external-metrics APIService is Available. Raises StartError / RuntimeError."""
    t0 = time.monotonic()
    missing = [n for n in PORT_NAMES if not st["ports"].get(n)]
    st["ports"].update(zip(missing, procs.free_ports(len(missing)), strict=True))
    _certificates(lay, p)
    install_crds(lay.kubeconfig, api)
    _kubectl(lay.kubeconfig, "apply", "--server-side", "--force-conflicts", "--field-manager=e2e-cluster", "-f", "-",
             stdin=json.dumps(_api_objects(p, st["ports"]["keda-adapter"])))
    operator, adapter = components(lay, p, st["ports"], st["server"])
    starter.start(operator)
    starter.wait_healthy([operator], timeout=60)
    starter.start(adapter)
    starter.wait_healthy([adapter], timeout=60)
    last: list[str | None] = [None]

    def available() -> bool:
        last[0] = apiservice_available(api)
        return last[0] == ""

    try:
        procs.poll(available, timeout=APISERVICE_TIMEOUT, interval=0.5, what=f"APIService {APISERVICE} Available",
                   abort=lambda: starter.exited(*NAMES), component=ADAPTER)
    except procs.StartError as e:
        raise procs.StartError(f"{e}; its Available condition: {last[0]!r}", ADAPTER) from None
    st["keda"] = {"version": config.KEDA_VERSION, "namespace": NAMESPACE, "apiservice": APISERVICE,
                  "cert_dir": str(cert_dir(lay)), "kubeconfig": str(lay.component_kubeconfig("keda")),
                  "operator_metrics_url": f"http://127.0.0.1:{st['ports']['keda-operator-metrics']}/metrics"}
    state.save(lay.state_file, st)
    log(f"KEDA {config.KEDA_VERSION} up in {time.monotonic() - t0:.1f}s: APIService {APISERVICE} Available")
