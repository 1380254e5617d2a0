"""docker-compose and Kubernetes files for users: well-formed, consistent with the Prometheus,
Alertmanager and Grafana configs they mount, and accepted by promtool/amtool as mounted.
(No Docker or Kubernetes here: these are the checks that can run without them.)"""

from __future__ import annotations

import dataclasses
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream_detector import health

from .support import ALERTMANAGER_DIR, GRAFANA_DIR, PROMETHEUS_DIR, ROOT, require_tool, run

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def service(name: str) -> dict[str, Any]:
    svc: dict[str, Any] = compose()["services"][name]
    return svc


def bind_mounts(name: str) -> dict[str, Path]:
    """Container path -> host path of a compose service's bind mounts (relative to deploy/)."""
    mounts = {}
    for volume in service(name).get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = (DEPLOY / source).resolve()
    return mounts


def host_path(name: str, container_path: str) -> Path:
    for target, source in sorted(bind_mounts(name).items(), key=lambda m: -len(m[0])):
        if container_path == target or container_path.startswith(target + "/"):
            return source / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{container_path} is not mounted into {name}")


def published(name: str) -> set[int]:
    return {int(p.split(":")[-1]) for p in service(name).get("ports", [])}


def prometheus_config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    return data


def k8s_docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def k8s(kind: str, name: str | None = None) -> dict[str, Any]:
    (doc,) = [d for d in k8s_docs() if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return doc


# --- docker-compose ---------------------------------------------------------------------------


def test_compose_has_the_stack_with_pinned_images() -> None:
    services = compose()["services"]
    assert set(services) == {"kafka", "worker", "prometheus", "alertmanager", "grafana"}
    for name, svc in services.items():
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", svc["image"]), name
        assert not svc["image"].endswith(":latest"), name
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_compose_kafka_is_kraft_without_topic_auto_creation() -> None:
    env = service("kafka")["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert not any("ZOOKEEPER" in key for key in env)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert service("worker")["environment"]["STREAM_DETECTOR_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_compose_ports_match_the_prometheus_and_grafana_configs() -> None:
    worker_env = service("worker")["environment"]
    metrics_port = int(worker_env["STREAM_DETECTOR_METRICS_PORT"])
    assert worker_env["STREAM_DETECTOR_METRICS_HOST"] == "0.0.0.0"  # reachable by Prometheus
    assert metrics_port in published("worker")
    jobs = {job["job_name"]: job for job in prometheus_config()["scrape_configs"]}
    (target,) = jobs["stream-detector"]["static_configs"][0]["targets"]
    assert target == f"worker:{metrics_port}"
    (am,) = prometheus_config()["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, port = am.split(":")
    assert host in compose()["services"] and int(port) in published(host)
    datasources = yaml.safe_load(
        (GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text()
    )
    url = datasources["datasources"][0]["url"]
    assert url == "http://prometheus:9090" and 9090 in published("prometheus")


def test_compose_mounts_the_repository_configs() -> None:
    assert host_path("prometheus", "/etc/prometheus/prometheus.yml") == (
        PROMETHEUS_DIR / "prometheus.yml"
    )
    for rule_file in prometheus_config()["rule_files"]:
        assert host_path("prometheus", f"/etc/prometheus/{rule_file}").is_file()
    assert host_path("alertmanager", "/etc/alertmanager/alertmanager.yml") == (
        ALERTMANAGER_DIR / "alertmanager.yml"
    )
    provider = yaml.safe_load(
        (GRAFANA_DIR / "provisioning/dashboards/stream-detector.yml").read_text()
    )
    dashboards = host_path("grafana", provider["providers"][0]["options"]["path"])
    assert sorted(p.name for p in dashboards.glob("*.json")) == [
        "capacity.json",
        "detections.json",
        "pipeline.json",
    ]
    home = service("grafana")["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path("grafana", home).is_file()
    assert host_path("grafana", "/etc/grafana/provisioning/datasources").is_dir()


def test_compose_secrets_are_where_alertmanager_reads_them() -> None:
    text = (ALERTMANAGER_DIR / "alertmanager.yml").read_text()
    files = set(re.findall(r"_file: (/\S+)", text))
    secrets = {f"/run/secrets/{name}" for name in service("alertmanager")["secrets"]}
    assert files == secrets
    assert set(compose()["secrets"]) == {Path(f).name for f in files}


@pytest.mark.monitoring
def test_promtool_and_amtool_accept_the_mounted_files(tmp_path: Path) -> None:
    promtool, amtool = require_tool("promtool"), require_tool("amtool")
    run(promtool, "check", "config", host_path("prometheus", "/etc/prometheus/prometheus.yml"))
    config = host_path("alertmanager", "/etc/alertmanager/alertmanager.yml")
    text = config.read_text()
    for glob in re.findall(r"^\s+- (/etc/alertmanager/\S+)$", text, re.M):
        text = text.replace(glob, str(host_path("alertmanager", glob)))
    local = tmp_path / "alertmanager.yml"
    local.write_text(text)
    run(amtool, "check-config", local)


# --- Kubernetes -------------------------------------------------------------------------------


def test_k8s_manifests_parse_and_kustomization_lists_them() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    kinds = sorted(d["kind"] for d in k8s_docs())
    assert kinds == ["ConfigMap", "PodDisruptionBudget", "Service", "Service", "StatefulSet"]
    for doc in k8s_docs():
        assert doc["apiVersion"] and doc["metadata"]["name"]


def test_k8s_statefulset_has_state_volume_probes_and_metrics_port() -> None:
    sts = k8s("StatefulSet")
    spec = sts["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert spec["serviceName"] == k8s("Service", "stream-detector")["metadata"]["name"]
    (container,) = spec["template"]["spec"]["containers"]
    env = k8s("ConfigMap")["data"]
    assert container["envFrom"][0]["configMapRef"]["name"] == k8s("ConfigMap")["metadata"]["name"]
    (port,) = container["ports"]
    assert port["name"] == "metrics"
    assert port["containerPort"] == int(env["STREAM_DETECTOR_METRICS_PORT"])
    assert env["STREAM_DETECTOR_METRICS_HOST"] == "0.0.0.0"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    (claim,) = spec["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == env["STREAM_DETECTOR_DATA_DIR"]
    for svc in (k8s("Service", "stream-detector"), k8s("Service", "stream-detector-metrics")):
        assert svc["spec"]["selector"].items() <= labels.items()
        assert svc["spec"]["ports"][0]["targetPort"] == "metrics"
    annotations = k8s("Service", "stream-detector-metrics")["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == port["containerPort"]


def test_k8s_probe_paths_are_served_by_the_health_endpoint() -> None:
    """The probes' paths exist on the real endpoint (not 404), readiness before recovery is 503."""
    container = k8s("StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    server = health.serve(port=0)
    try:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = container[probe]["httpGet"]["path"]
            url = f"http://127.0.0.1:{server.port}{path}"
            try:
                status = urllib.request.urlopen(url, timeout=5).status
            except urllib.error.HTTPError as err:
                status = err.code
            assert status == (503 if probe == "readinessProbe" else 200), probe
    finally:
        server.stop()


def test_env_names_are_the_worker_settings_and_valid() -> None:
    """Every STREAM_DETECTOR_* variable the deployments set is a setting, with a valid value."""
    worker_config = pytest.importorskip("stream_detector.worker.config")
    from stream_detector.config import ENV_PREFIX, DetectorConfig

    known = {"STREAM_DETECTOR_LOG_LEVEL", "STREAM_DETECTOR_LOG_FORMAT"} | {
        ENV_PREFIX + f.name.upper()
        for cls in (worker_config.WorkerConfig, DetectorConfig)
        for f in dataclasses.fields(cls)
    }
    for env in (service("worker")["environment"], k8s("ConfigMap")["data"]):
        assert set(env) <= known, set(env) - known
        config = worker_config.WorkerConfig.from_env(env)
        assert (config.metrics_host, config.metrics_port) == ("0.0.0.0", 9477)


def test_install_script_is_executable_and_valid_bash() -> None:
    script = DEPLOY / "monitoring" / "install.sh"
    assert os.access(script, os.X_OK)
    run("bash", "-n", script)
    text = script.read_text()
    assert "--no-install-recommends" in text and "policy-rc.d" in text
    assert "prometheus-alertmanager" in text
