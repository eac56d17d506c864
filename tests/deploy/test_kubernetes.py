"""docker/k8s: every overlay renders, validates strictly against the Kubernetes schemas, and
holds together (references resolve, probes, scaling, GPU, storage, security)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .manifests import (
    K8S,
    OVERLAYS,
    Resource,
    app_containers,
    container_env,
    decoded_secret,
    find,
    overlay,
    pod_spec,
    read_env_file,
    render,
    rendered,
    secret_keys,
)

# The oldest Kubernetes release we support and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
TARGETS = ("base", *(f"overlays/{name}" for name in OVERLAYS))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_manifests_validate_strictly(target: str, version: str) -> None:
    resources = rendered(target)
    assert resources
    for resource in resources:
        kubernetes_validate.validate(resource, version, strict=True)


def _by_id(resources: Any) -> dict[tuple[str, str, str], Resource]:
    out = {}
    for resource in resources:
        if resource["kind"] == "Secret":
            resource = {**resource, "data": decoded_secret(resource)}
        meta = resource["metadata"]
        out[(resource["kind"], meta.get("namespace", ""), meta["name"])] = resource
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_renderer_agrees_with_kubectl_kustomize(target: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; docker/k8s/render.py output is not cross-checked")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    theirs = _by_id(doc for doc in yaml.safe_load_all(result.stdout) if doc)
    mine = _by_id(rendered(target))
    assert sorted(mine) == sorted(theirs)
    for ident, resource in theirs.items():
        assert mine[ident] == resource, ident


def test_renderer_refuses_what_it_does_not_implement(tmp_path: Any) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "resources: []\nconfigMapGenerator:\n  - name: x\n    literals: [A=1]\n"
    )
    with pytest.raises(render.KustomizeError, match="disableNameSuffixHash"):
        render.build(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamePrefix: x-\n")
    with pytest.raises(render.KustomizeError, match="namePrefix"):
        render.build(tmp_path)


@pytest.mark.parametrize("name", OVERLAYS)
def test_references_resolve(name: str) -> None:
    resources = overlay(name)
    names = {(r["kind"], r["metadata"]["name"]) for r in resources}
    assert {r["metadata"].get("namespace") for r in resources if r["kind"] != "Namespace"} == {
        find(resources, "Namespace", r["metadata"]["name"])["metadata"]["name"]
        for r in resources
        if r["kind"] == "Namespace"
    }
    for resource in resources:
        spec = pod_spec(resource)
        if spec is None:
            continue
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for template in resource["spec"].get("volumeClaimTemplates", []):
            volumes[template["metadata"]["name"]] = template
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert ("PersistentVolumeClaim", claim) in names, claim
        for container in spec.get("initContainers", []) + spec["containers"]:
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, (resource["metadata"]["name"], mount)
            for item in container.get("envFrom", []):
                if "configMapRef" in item:
                    assert ("ConfigMap", item["configMapRef"]["name"]) in names
                else:
                    secret_keys(resources, item["secretRef"]["name"], name)
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secret_keys(resources, ref["name"], name), ref
        labels = resource["spec"].get("template", {}).get("metadata", {}).get("labels")
        if resource["kind"] in ("Deployment", "StatefulSet"):
            assert resource["spec"]["selector"]["matchLabels"].items() <= labels.items()

    web = find(resources, "Deployment", "strokeaid-web")
    web_labels = web["spec"]["template"]["metadata"]["labels"]
    service = find(resources, "Service", "strokeaid-web")
    assert service["spec"]["selector"].items() <= web_labels.items()
    port_names = {p["name"] for p in web["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    pdb = find(resources, "PodDisruptionBudget", "strokeaid-web")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= web_labels.items()
    hpa = find(resources, "HorizontalPodAutoscaler", "strokeaid-web")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "strokeaid-web",
    }
    ingress = find(resources, "Ingress", "strokeaid")
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            service = find(resources, "Service", backend["name"])
            assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


@pytest.mark.parametrize("name", OVERLAYS)
def test_web_probes_scaling_and_websocket_ingress(name: str) -> None:
    resources = overlay(name)
    web = find(resources, "Deployment", "strokeaid-web")
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["web"]
    config = find(resources, "ConfigMap", "strokeaid-config")["data"]
    for probe in ("readinessProbe", "livenessProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] == "/healthz"
        # Probes come from the node with the pod IP as host: they must name an allowed host.
        (host,) = [h["value"] for h in http["httpHeaders"] if h["name"] == "Host"]
        assert host in config["ALLOWED_HOSTS"].split(",")
    hpa = find(resources, "HorizontalPodAutoscaler", "strokeaid-web")
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"] >= 1
    annotations = find(resources, "Ingress", "strokeaid")["metadata"]["annotations"]
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{key}"]) >= 3600
    upload_limit = int(annotations["nginx.ingress.kubernetes.io/proxy-body-size"].rstrip("m"))
    assert upload_limit * 1024 * 1024 >= int(config["STROKEAID_MAX_UPLOAD_BYTES"])


@pytest.mark.parametrize("name", OVERLAYS)
def test_app_pods_are_non_root_read_only_with_tmp_and_sized(name: str) -> None:
    resources = overlay(name)
    containers = app_containers(resources)
    assert {r["metadata"]["name"] for r, _ in containers} >= {
        "strokeaid-web",
        "strokeaid-worker",
        "strokeaid-training-worker",
        "strokeaid-migrate",
        "strokeaid-training-reap",
    }
    for resource, container in containers:
        where = f"{resource['metadata']['name']}/{container['name']}"
        spec = pod_spec(resource)
        assert spec is not None
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] == 10001, where
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, where
        assert security["allowPrivilegeEscalation"] is False, where
        tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert tmp, f"{where}: no writable /tmp"
        (volume,) = [v for v in spec["volumes"] if v["name"] == tmp[0]["name"]]
        assert "emptyDir" in volume, where
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), where


@pytest.mark.parametrize("name", OVERLAYS)
def test_queue_and_channel_layer_on_redis_so_pods_scale_apart(name: str) -> None:
    resources = overlay(name)
    for resource, container in app_containers(resources):
        env = container_env(resources, container, name)
        assert "REDIS_URL" in env, resource["metadata"]["name"]
        assert "DATABASE_URL" in env, resource["metadata"]["name"]
    if name == "dev":
        secret = decoded_secret(find(resources, "Secret", "strokeaid-secrets"))
        assert secret["REDIS_URL"].startswith("redis://redis:")
        assert find(resources, "Service", "redis")


def test_training_worker_gets_a_gpu_in_prod_and_the_cpu_in_dev() -> None:
    for name in OVERLAYS:
        resources = overlay(name)
        deployment = find(resources, "Deployment", "strokeaid-training-worker")
        spec = deployment["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        env = container_env(resources, container, name)
        assert env["Q_CLUSTER_NAME"] == "training"
        assert container["args"] == ["training-worker"]
        # A running training gets time to finish after SIGTERM (django-q2 drains).
        assert spec["terminationGracePeriodSeconds"] >= 3600
        assert deployment["spec"]["strategy"]["type"] == "Recreate"
        gpu = container["resources"]["limits"].get("nvidia.com/gpu")
        if name == "prod":
            assert gpu == "1"
            assert container["image"].split(":")[0].endswith("/strokeaid-gpu")
            assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
                "tolerations"
            ]
            assert env["STROKEAID_DEVICE"] == "cuda"
        else:
            assert gpu is None
            assert "nodeSelector" not in spec
            assert container["image"].split(":")[0].endswith("/strokeaid") or container[
                "image"
            ].startswith("strokeaid:")


def test_storage_shared_volume_in_dev_object_storage_in_prod() -> None:
    dev = overlay("dev")
    config = find(dev, "ConfigMap", "strokeaid-config")["data"]
    assert config["STORAGE_BACKEND"] == "local"
    claim = find(dev, "PersistentVolumeClaim", "strokeaid-data")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for name in ("strokeaid-web", "strokeaid-worker", "strokeaid-training-worker"):
        spec = find(dev, "Deployment", name)["spec"]["template"]["spec"]
        (data,) = [v for v in spec["volumes"] if v["name"] == "data"]
        assert data == {"name": "data", "persistentVolumeClaim": {"claimName": "strokeaid-data"}}
        mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
        assert mounts[config["STROKEAID_DATA_DIR"]] == "data"

    prod = overlay("prod")
    config = find(prod, "ConfigMap", "strokeaid-config")["data"]
    assert config["STORAGE_BACKEND"] == "s3"
    assert config["S3_BUCKET"] and config["S3_ENDPOINT_URL"].startswith("https://")
    assert {"S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"} <= secret_keys(
        prod, "strokeaid-secrets", "prod"
    )
    assert not [r for r in prod if r["kind"] == "PersistentVolumeClaim"]


def test_no_secret_values_are_committed() -> None:
    prod = overlay("prod")
    assert not [r for r in prod if r["kind"] == "Secret"], "prod Secrets are created out of band"
    for key, value in read_env_file(K8S / "overlays/prod/secret.example.env").items():
        assert "<" in value, f"{key} must stay a placeholder"
    dev_secret = decoded_secret(find(overlay("dev"), "Secret", "strokeaid-secrets"))
    for key in ("SECRET_KEY", "STROKEAID_UID_SECRET", "POSTGRES_PASSWORD"):
        assert "dev-only-placeholder" in dev_secret[key], key
    for name in OVERLAYS:
        config = find(overlay(name), "ConfigMap", "strokeaid-config")["data"]
        assert not {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "S3_SECRET_ACCESS_KEY"} & set(config)


def test_migrations_run_as_a_job_and_pods_wait_for_them() -> None:
    for name in OVERLAYS:
        resources = overlay(name)
        job = find(resources, "Job", "strokeaid-migrate")
        assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
        for deployment in ("strokeaid-web", "strokeaid-worker", "strokeaid-training-worker"):
            spec = find(resources, "Deployment", deployment)["spec"]["template"]["spec"]
            assert [c["args"] for c in spec["initContainers"]] == [["wait-for-migrations"]]


def test_the_bot_is_one_recreated_poller_and_off_in_dev_until_a_token_is_set() -> None:
    prod = find(overlay("prod"), "Deployment", "strokeaid-bot")
    assert prod["spec"]["replicas"] == 1
    assert prod["spec"]["strategy"]["type"] == "Recreate"  # never two pollers of one token
    (container,) = prod["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["bot"]
    assert find(overlay("dev"), "Deployment", "strokeaid-bot")["spec"]["replicas"] == 0
    for name in OVERLAYS:
        config = find(overlay(name), "ConfigMap", "strokeaid-config")["data"]
        assert config["STROKEAID_API_URL"] == "http://strokeaid-web"
        assert "strokeaid-web" in config["ALLOWED_HOSTS"].split(",")
