"""The deployment artifacts, checked offline: the Dockerfiles linted (hadolint), the Compose file against
the compose-spec schema (vendored by check-jsonschema), every Kubernetes manifest of each kustomize overlay
against the Kubernetes schemas (shipped by kubernetes-validate); and what each must say to run as the
runbook (deploy/README.md) promises."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from agent_server.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBE = DEPLOY / "kubernetes"
BIN = Path(sys.executable).parent  # hadolint and check-jsonschema come with the test extra
KUBE_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())  # the oldest we claim, the newest shipped
CRDS = {("keda.sh/v1alpha1", "ScaledObject")}  # custom resources: no schema shipped, checked below by hand


def hadolint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "hadolint", "--no-color", str(path)], capture_output=True, text=True)


def _instructions(path: Path) -> list[str]:
    text = re.sub(r"\\\n\s*", " ", path.read_text())  # continuation lines joined
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# ---- the image ------------------------------------------------------------------------------------------

def test_the_dockerfile_passes_hadolint():
    result = hadolint(ROOT / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_slim_non_root_with_a_health_check_and_sigterm():
    lines = _instructions(ROOT / "Dockerfile")
    froms = [line for line in lines if line.startswith("FROM ")]
    assert len(froms) >= 2 and all("-slim" in line for line in froms)
    assert [line for line in lines if line.startswith("USER ")][-1] == "USER 10001:10001"
    (healthcheck,) = [line for line in lines if line.startswith("HEALTHCHECK ")]
    assert "/ok" in healthcheck
    assert "STOPSIGNAL SIGTERM" in lines
    assert "WORKDIR /app" in lines  # where every role finds langgraph.json (the CLI's default --config)
    assert 'ENTRYPOINT ["agent-server"]' in lines


def _project(tmp_path: Path, config: dict, name: str = "langgraph.json") -> Path:
    (tmp_path / "graphs").mkdir()
    (tmp_path / "graphs" / "g.py").write_text("graph = None\n")
    (tmp_path / name).write_text(json.dumps({"graphs": {"g": "./graphs/g.py:graph"}, **config}))
    return tmp_path / name


def test_agent_server_dockerfile_writes_a_project_image_that_installs_its_dependencies(tmp_path, capsys):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "pyproject.toml").write_text("[project]\nname = 'pkg'\nversion = '0'\n")
    (tmp_path / "reqs").mkdir()
    (tmp_path / "reqs" / "requirements.txt").write_text("httpx\n")
    config = _project(tmp_path, {"dependencies": [".", "./pkg", "./reqs", "langchain-openai>=0.3"]})
    assert cli(["dockerfile", "--config", str(config), str(tmp_path / "Dockerfile")]) == 0
    dockerfile = tmp_path / "Dockerfile"
    assert hadolint(dockerfile).returncode == 0, hadolint(dockerfile).stdout
    lines = _instructions(dockerfile)
    assert lines[0] == "FROM agent-server:0.1.0"
    assert "COPY . /app" in lines
    (install,) = [line for line in lines if line.startswith("RUN ")]
    assert "pip install --no-cache-dir 'langchain-openai>=0.3'" in install
    assert "pip install --no-cache-dir /app/pkg" in install
    assert "pip install --no-cache-dir -r /app/reqs/requirements.txt" in install
    assert lines[-1] == "USER 10001:10001"  # back to the base image's user
    assert ".agent_server" in (tmp_path / ".dockerignore").read_text()  # the embedded database stays out
    assert "wrote" in capsys.readouterr().out


def test_agent_server_dockerfile_takes_a_base_image_a_config_of_another_name_and_dockerfile_lines(tmp_path):
    config = _project(tmp_path, {"dockerfile_lines": ["ENV GREETING=hi"]}, name="agents.json")
    assert cli(["dockerfile", "-c", str(config), "--base-image", "registry.example.com/agent-server:0.1.0",
                str(tmp_path / "out" / "Dockerfile")]) == 0
    lines = _instructions(tmp_path / "out" / "Dockerfile")
    assert lines[0] == "FROM registry.example.com/agent-server:0.1.0"
    assert "ENV GREETING=hi" in lines
    assert "COPY agents.json /app/langgraph.json" in lines  # every role reads /app/langgraph.json
    assert not [line for line in lines if line.startswith("RUN ")]  # nothing to install


def test_agent_server_dockerfile_refuses_a_dependency_outside_the_build_context(tmp_path, capsys):
    (tmp_path / "lib").mkdir()
    project = tmp_path / "project"
    project.mkdir()
    config = _project(project, {"dependencies": ["../lib"]})
    assert cli(["dockerfile", "-c", str(config), str(project / "Dockerfile")]) == 2
    err = capsys.readouterr().err
    assert "outside" in err and "build context" in err
    assert not (project / "Dockerfile").exists()


# ---- Docker Compose -------------------------------------------------------------------------------------

def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_the_compose_file_is_valid_under_the_compose_spec():
    result = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_topology_keeps_state_in_postgresql_only_and_drains_workers():
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker", "orchestrator", "executor-1", "executor-2"}
    assert all(services[name]["profiles"] == ["distributed"] for name in ("orchestrator", "executor-1", "executor-2"))
    assert "pgvector" in services["postgres"]["image"]
    assert services["postgres"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert set(compose()["volumes"]) == {"pgdata"}
    assert not any(s.get("volumes") for name, s in services.items() if name != "postgres")
    assert services["migrate"]["command"] == ["migrate"]
    assert services["api"]["command"] == ["serve", "--no-queue"]
    assert services["worker"]["command"] == ["worker"]
    assert services["api"]["deploy"]["replicas"] >= 2 and services["worker"]["deploy"]["replicas"] >= 2
    for name, service in services.items():
        assert service["restart"] in ("unless-stopped", "on-failure"), name
        assert "healthcheck" in service, name
        if name != "redis":
            assert service["env_file"] == "agent-server.env", name  # secrets from a file kept out of git
    grace = int(services["worker"]["stop_grace_period"].rstrip("s"))
    assert grace > int(services["worker"]["environment"]["DRAIN_TIMEOUT_SECS"])
    example = (DEPLOY / "agent-server.env.example").read_text()
    assert "DATABASE_URI=" in example and "POSTGRES_PASSWORD=" in example


# ---- Kubernetes -----------------------------------------------------------------------------------------

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl (with its kustomize) is not installed")


def render(kustomization_dir: Path) -> list[dict]:
    out = subprocess.run([KUBECTL, "kustomize", str(kustomization_dir)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def base_with(tmp_path: Path, component: str) -> list[dict]:
    """The base with one component, as an overlay of one's own would have it."""
    rel = lambda p: os.path.relpath(p, tmp_path)  # noqa: E731 — kustomize takes relative paths
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [rel(KUBE / "base")], "components": [rel(KUBE / "components" / component)],
    }))
    return render(tmp_path)


def validate(docs: list[dict]) -> None:
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CRDS:
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{doc['kind']} {doc['metadata']['name']} (Kubernetes {version}): {exc.message}")


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_every_plain_manifest_is_valid_kubernetes():
    """Without kustomize too: each file of the base and the components, as written."""
    files = [p for p in KUBE.rglob("*.yaml") if p.name != "kustomization.yaml"]
    assert files
    for path in files:
        validate([doc for doc in yaml.safe_load_all(path.read_text()) if doc])


@needs_kubectl
@pytest.mark.parametrize("overlay", ["base", "overlays/production"])
def test_the_rendered_overlays_are_valid_kubernetes(overlay):
    docs = render(KUBE / overlay)
    validate(docs)
    assert {d["kind"] for d in docs} >= {
        "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "ServiceAccount",
    }


@needs_kubectl
@pytest.mark.parametrize("component", ["keda", "worker-hpa-external-metric"])
def test_the_base_with_each_worker_autoscaler_is_valid_and_leaves_the_count_to_it(tmp_path, component):
    docs = base_with(tmp_path, component)
    validate(docs)
    worker = by_kind(docs, "Deployment")["agent-server-worker"]
    assert "replicas" not in worker["spec"]  # the autoscaler owns it: kubectl apply must not reset it
    if component == "keda":
        (scaled,) = by_kind(docs, "ScaledObject").values()
        assert scaled["spec"]["scaleTargetRef"]["name"] == "agent-server-worker"
        service = by_kind(docs, "Service")["agent-server-api"]
        for trigger in scaled["spec"]["triggers"]:
            assert trigger["type"] == "metrics-api"
            # the API Service's port, its namespace named (KEDA runs in its own)
            url = trigger["metadata"]["url"]
            assert re.fullmatch(rf"http://agent-server-api\.[a-z0-9-]+\.svc:{service['spec']['ports'][0]['port']}"
                                r"/metrics\?format=json", url), url
            # keys of /metrics?format=json (tests/api/test_topology.py reads them off a real API)
            assert trigger["metadata"]["valueLocation"] in ("queue_depth", "runs_running")
    else:
        hpa = by_kind(docs, "HorizontalPodAutoscaler")["agent-server-worker"]
        assert hpa["spec"]["metrics"][0]["external"]["metric"]["name"] == "agent_server_queue_depth"


@needs_kubectl
def test_the_pods_hold_no_state_probe_ok_drain_and_take_config_and_secrets():
    docs = render(KUBE / "overlays/production")
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == {"agent-server-api", "agent-server-worker"}
    (config_map,) = by_kind(docs, "ConfigMap").values()
    assert json.loads(config_map["data"]["langgraph.json"])["graphs"]
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert all("persistentVolumeClaim" not in v and "hostPath" not in v for v in pod["volumes"]), name
        (migrate,) = pod["initContainers"]  # the schema before the new code
        assert migrate["args"] == ["migrate"]
        for container in [*pod["initContainers"], *pod["containers"]]:
            assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
            assert {"secretRef": {"name": "agent-server-secrets"}} in container["envFrom"]
            mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/app/langgraph.json")
            config_volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
            assert config_volume["configMap"]["name"] == config_map["metadata"]["name"]
    api = deployments["agent-server-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["args"] == ["serve", "--no-queue"]
    assert api["readinessProbe"]["httpGet"]["path"] == api["livenessProbe"]["httpGet"]["path"] == "/ok"
    worker_pod = deployments["agent-server-worker"]["spec"]["template"]["spec"]
    drain = float(next(e["value"] for e in worker_pod["containers"][0]["env"] if e["name"] == "DRAIN_TIMEOUT_SECS"))
    assert worker_pod["terminationGracePeriodSeconds"] > drain
    pdbs = by_kind(docs, "PodDisruptionBudget")
    for component in ("api", "worker"):
        assert any(p["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component") == component
                   for p in pdbs.values())
    hpa = by_kind(docs, "HorizontalPodAutoscaler")["agent-server-api"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "replicas" not in deployments["agent-server-api"]["spec"]


@needs_kubectl
def test_the_base_with_distributed_mode_runs_orchestrators_and_executors_they_can_name(tmp_path):
    docs = base_with(tmp_path, "distributed")
    validate(docs)
    deployments, pdbs = by_kind(docs, "Deployment"), by_kind(docs, "PodDisruptionBudget")
    assert set(deployments) == {"agent-server-api", "agent-server-orchestrator"}  # no worker runs graph code
    executors = by_kind(docs, "StatefulSet")["agent-server-executor"]
    service = by_kind(docs, "Service")[executors["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"  # headless: a stable DNS name per executor pod
    port = service["spec"]["ports"][0]["port"]
    orchestrator = deployments["agent-server-orchestrator"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in orchestrator["containers"][0]["env"]}
    # the orchestrator names every executor of the StatefulSet, as its pods are named
    assert env["AGENT_SERVER_EXECUTORS"]["value"].split(",") == [
        f"{executors['metadata']['name']}-{i}.{service['metadata']['name']}:{port}"
        for i in range(executors["spec"]["replicas"])
    ]
    executor = executors["spec"]["template"]["spec"]
    assert executor["containers"][0]["args"] == ["executor", "--port", str(port)]
    assert orchestrator["containers"][0]["args"] == ["orchestrator"]
    for pod, component in ((orchestrator, "orchestrator"), (executor, "executor")):
        container = pod["containers"][0]
        container_env = {e["name"]: e for e in container["env"]}
        secret = container_env["AGENT_SERVER_EXECUTOR_SECRET"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": "agent-server-secrets", "key": "AGENT_SERVER_EXECUTOR_SECRET"}
        assert pod["terminationGracePeriodSeconds"] > float(container_env["DRAIN_TIMEOUT_SECS"]["value"])
        assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
        assert pod["initContainers"][0]["args"] == ["migrate"]
        assert any(p["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component") == component
                   for p in pdbs.values())
    assert "agent-server-worker" not in pdbs
