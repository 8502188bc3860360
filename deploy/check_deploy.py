"""What the Kubernetes and Compose schemas cannot check about Portunus's deployment files.

Run by deploy/validate.sh with the rendered standalone and cluster Kustomize layouts:
    python deploy/check_deploy.py standalone.yaml cluster.yaml
Exits non-zero, naming every failed property, when one does not hold.
"""
import re
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def docs(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def find(resources, kind, name):
    for r in resources:
        if r["kind"] == kind and r["metadata"]["name"] == name:
            return r
    failures.append(f"no {kind} {name}")
    return None


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def media_reachable(pod, where):
    """A media-carrying pod: host network, its address advertised, probes on the admin port."""
    spec = pod["spec"]
    check(spec.get("hostNetwork") is True, f"{where}: media needs hostNetwork (clients reach the node's address)")
    check(spec.get("dnsPolicy") == "ClusterFirstWithHostNet", f"{where}: hostNetwork pods need dnsPolicy ClusterFirstWithHostNet")
    c = spec["containers"][0]
    ips = env_of(c).get("PORTUNUS_MEDIA_IPS", {})
    check(ips.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.hostIP",
          f"{where}: PORTUNUS_MEDIA_IPS must come from status.hostIP")
    probes(c, where)


def probes(container, where):
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        got = container.get(probe, {}).get("httpGet", {})
        check(got.get("path") == path and got.get("port") == "admin", f"{where}: {probe} must GET {path} on the admin port")
    check("requests" in container.get("resources", {}), f"{where}: resource requests")


def drain_fits(pod, drain_s, where):
    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    check(grace > drain_s, f"{where}: terminationGracePeriodSeconds {grace} must exceed the drain ({drain_s} s)")


def main(standalone_path, cluster_path):
    base_toml = (DEPLOY / "k8s/base/portunus.toml").read_text()
    drain = int(re.search(r"^drain_timeout\s*=\s*(\d+)", base_toml, re.M).group(1))

    standalone = docs(standalone_path)
    d = find(standalone, "Deployment", "portunus")
    if d:
        media_reachable(d["spec"]["template"], "standalone")
        drain_fits(d["spec"]["template"], drain, "standalone")

    cluster = docs(cluster_path)
    media = find(cluster, "StatefulSet", "portunus-media")
    if media:
        pod = media["spec"]["template"]
        media_reachable(pod, "media node")
        c = pod["spec"]["containers"][0]
        env = env_of(c)
        check(env.get("PORTUNUS_NODE_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
              "media node: the pod name is its node id")
        node_drain = int(env.get("PORTUNUS_DRAIN_TIMEOUT", {}).get("value", drain))
        drain_fits(pod, node_drain, "media node")
        admin = env.get("PORTUNUS_ADMIN_PORT", {}).get("value")
        check(any(p.get("name") == "admin" and str(p["containerPort"]) == admin for p in c["ports"]),
              "media node: the admin container port is PORTUNUS_ADMIN_PORT")
        anti = pod["spec"].get("affinity", {}).get("podAntiAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", [])
        check(any(t.get("topologyKey") == "kubernetes.io/hostname" for t in anti), "media node: anti-affinity by host")
        check("PORTUNUS_REDIS_URL" in env and "secretKeyRef" in str(env.get("REDIS_PASSWORD")), "media node: Redis password from a Secret")
    pdb = find(cluster, "PodDisruptionBudget", "portunus-media")
    check(pdb is not None and pdb["spec"].get("maxUnavailable") == 1, "media node: PodDisruptionBudget maxUnavailable 1")

    gw = find(cluster, "Deployment", "portunus-gateway")
    if gw:
        pod = gw["spec"]["template"]
        probes(pod["spec"]["containers"][0], "gateway")
        drain_fits(pod, drain, "gateway")
    hpa = find(cluster, "HorizontalPodAutoscaler", "portunus-gateway")
    check(hpa is not None and hpa["spec"]["scaleTargetRef"]["name"] == "portunus-gateway", "gateway: HPA")

    redis = find(cluster, "StatefulSet", "portunus-redis")
    if redis:
        args = " ".join(redis["spec"]["template"]["spec"]["containers"][0]["args"])
        check("--appendonly yes" in args, "Redis: AOF on")
        check("--requirepass" in args, "Redis: a password")
        check(redis["spec"].get("volumeClaimTemplates"), "Redis: data on a volume")

    # The ServiceMonitor (outside the Kubernetes schema) selects both Services, by a port they have.
    sm = find(cluster, "ServiceMonitor", "portunus")
    if sm:
        check(sm["apiVersion"] == "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")
        apps = sm["spec"]["selector"]["matchExpressions"][0]["values"]
        port = sm["spec"]["endpoints"][0]["port"]
        for svc in (r for r in cluster if r["kind"] == "Service" and r["metadata"].get("labels", {}).get("app") in apps):
            check(any(p["name"] == port for p in svc["spec"]["ports"]), f"Service {svc['metadata']['name']} has port {port}")
        scraped = {r["metadata"]["labels"]["app"] for r in cluster if r["kind"] == "Service" and r["metadata"].get("labels", {}).get("app") in apps}
        check(scraped == {"portunus-gateway", "portunus-media"}, f"ServiceMonitor scrapes gateways and media nodes, got {scraped}")

    # Compose: media on the host's network, health checks on the admin endpoints, Redis with AOF.
    for name in ("docker-compose.yml", "docker-compose.cluster.yml"):
        compose = yaml.safe_load((DEPLOY / name).read_text())
        for svc_name, svc in compose["services"].items():
            if svc.get("image", "").startswith("portunus") or "build" in svc:
                check(svc.get("network_mode") == "host", f"{name} {svc_name}: host networking")
                test = " ".join(svc.get("healthcheck", {}).get("test", []))
                check("/readyz" in test, f"{name} {svc_name}: health check on /readyz")
        if "redis" in compose["services"]:
            cmd = " ".join(compose["services"]["redis"]["command"])
            check("--appendonly yes" in cmd, f"{name}: Redis with AOF")

    dockerfile = (DEPLOY / "Dockerfile").read_text()
    check(len(re.findall(r"^FROM ", dockerfile, re.M)) >= 2, "Dockerfile: multi-stage")
    check(re.search(r"^USER (?!root|0\b)", dockerfile, re.M) is not None, "Dockerfile: runs as non-root")
    check(re.search(r"^HEALTHCHECK .*", dockerfile, re.M) is not None, "Dockerfile: HEALTHCHECK")

    for f in failures:
        print(f"check_deploy: {f}", file=sys.stderr)
    if not failures:
        print("deployment properties: all hold")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
