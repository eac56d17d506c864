"""A small kustomize renderer for docker/k8s, for machines without ``kubectl``.

    python docker/k8s/render.py docker/k8s/overlays/dev > dev.yaml

It implements exactly the kustomize features these manifests use, and refuses anything else
(so a manifest can never silently mean something different here than under ``kubectl
kustomize``; tests/deploy compares the two wherever kubectl is installed):

- ``resources`` (YAML files, multi-document, and directories holding a kustomization),
  ``components`` (``kind: Component`` directories);
- ``configMapGenerator`` / ``secretGenerator`` with ``literals`` and ``envs`` files and
  ``behavior`` create/merge/replace; only with ``generatorOptions.disableNameSuffixHash: true``
  (no hash suffix, so no name-reference rewriting is needed);
- ``patches`` with ``path`` to strategic-merge patches, matched by kind and name: maps merge,
  ``null`` deletes a key, lists of containers/volumes/env/... merge by their Kubernetes merge
  key (patch items first, then the untouched base items, as kustomize orders them), other
  lists are replaced; ``$patch`` directives are refused;
- ``namespace`` (namespaced kinds), ``labels`` (``pairs`` on metadata.labels only; selectors
  and templates are refused), ``images`` (``newName``/``newTag``/``digest``).
"""

from __future__ import annotations

import base64
import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KNOWN_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "components",
    "namespace",
    "labels",
    "images",
    "patches",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
}
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}
# Kubernetes' strategic-merge keys (patchMergeKey) of the list fields these manifests patch.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}


class KustomizeError(Exception):
    """A kustomization uses something this renderer does not implement, or is wrong."""


def _load_yaml_documents(path: Path) -> list[Resource]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


def _kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    raise KustomizeError(f"no kustomization file in {directory}")


def _key(resource: Resource) -> tuple[str, str]:
    return resource["kind"], resource["metadata"]["name"]


# --- strategic merge patch ------------------------------------------------------------------
def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        # Container ports merge on containerPort, Service ports on port.
        dicts = [item for item in items if isinstance(item, dict)]
        if dicts and all("containerPort" in item for item in dicts):
            return "containerPort"
        if dicts and all("port" in item for item in dicts):
            return "port"
        return None
    return MERGE_KEYS.get(field)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """Kubernetes strategic merge of ``patch`` into ``base`` (the subset described above)."""
    if isinstance(patch, dict) and isinstance(base, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if key.startswith("$"):
                raise KustomizeError(f"patch directive {key!r} is not supported")
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = strategic_merge(out[key], value, key)
            else:
                out[key] = _without_nulls(value)
        return out
    if isinstance(patch, list) and isinstance(base, list):
        merge_key = _merge_key(field, base + patch)
        if merge_key is None:
            return _without_nulls(patch)
        remaining = [copy.deepcopy(item) for item in base]
        merged: list[Any] = []
        for item in patch:
            if not isinstance(item, dict) or merge_key not in item:
                raise KustomizeError(f"list {field!r}: patch item without {merge_key!r}")
            match = next((b for b in remaining if b.get(merge_key) == item[merge_key]), None)
            if match is None:
                merged.append(_without_nulls(item))
            else:
                remaining.remove(match)
                merged.append(strategic_merge(match, item, field))
        return merged + remaining
    return _without_nulls(patch)


# --- generators -----------------------------------------------------------------------------
def _read_env_file(path: Path) -> dict[str, str]:
    data: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise KustomizeError(f"{path}: line without '=': {raw!r}")
        key, value = line.split("=", 1)
        data[key] = value
    return data


def _generate(kind: str, spec: dict[str, Any], directory: Path, no_hash: bool) -> Resource:
    unsupported = set(spec) - {"name", "behavior", "literals", "envs", "options", "type"}
    if unsupported:
        raise KustomizeError(f"{kind} generator fields not supported: {sorted(unsupported)}")
    options = spec.get("options") or {}
    if set(options) - {"disableNameSuffixHash"}:
        raise KustomizeError(f"generator options not supported: {sorted(options)}")
    if not options.get("disableNameSuffixHash", no_hash):
        raise KustomizeError("generators need disableNameSuffixHash: true (no hash suffixes)")
    data: dict[str, str] = {}
    for env_file in spec.get("envs") or []:
        data.update(_read_env_file(directory / env_file))
    for literal in spec.get("literals") or []:
        key, value = literal.split("=", 1)
        data[key] = value
    resource: Resource = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": spec["name"]},
    }
    if kind == "Secret":
        resource["type"] = spec.get("type", "Opaque")
        resource["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    else:
        resource["data"] = data
    return resource


def _apply_generated(resources: list[Resource], generated: Resource, behavior: str) -> None:
    existing = next((r for r in resources if _key(r) == _key(generated)), None)
    if behavior == "create":
        if existing is not None:
            raise KustomizeError(f"{_key(generated)} already exists (use behavior: merge)")
        resources.append(generated)
    elif existing is None:
        raise KustomizeError(f"{_key(generated)}: nothing to {behavior}")
    elif behavior == "merge":
        existing.setdefault("data", {}).update(generated["data"])
    elif behavior == "replace":
        existing["data"] = generated["data"]
    else:
        raise KustomizeError(f"unknown generator behavior {behavior!r}")


# --- transformers ---------------------------------------------------------------------------
def _containers(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            else:
                yield from _containers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _containers(value)


def _image_name(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name


def _set_images(resources: list[Resource], images: list[dict[str, Any]]) -> None:
    for entry in images:
        if set(entry) - {"name", "newName", "newTag", "digest"}:
            raise KustomizeError(f"images entry not supported: {entry}")
        for resource in resources:
            for container in _containers(resource.get("spec")):
                if _image_name(container.get("image", "")) != entry["name"]:
                    continue
                name = entry.get("newName", entry["name"])
                if "digest" in entry:
                    container["image"] = f"{name}@{entry['digest']}"
                elif "newTag" in entry:
                    container["image"] = f"{name}:{entry['newTag']}"
                else:
                    old = container["image"]
                    container["image"] = name + old[len(_image_name(old)) :]


def _set_labels(resources: list[Resource], labels: list[dict[str, Any]]) -> None:
    for entry in labels:
        if entry.get("includeSelectors") or entry.get("includeTemplates"):
            raise KustomizeError("labels with includeSelectors/includeTemplates not supported")
        if set(entry) - {"pairs", "includeSelectors", "includeTemplates"}:
            raise KustomizeError(f"labels entry not supported: {entry}")
        for resource in resources:
            resource["metadata"].setdefault("labels", {}).update(entry["pairs"])


def _patch(resources: list[Resource], entry: dict[str, Any], directory: Path) -> None:
    if set(entry) != {"path"}:
        raise KustomizeError(f"only `patches: - path: ...` is supported, got {entry}")
    for patch in _load_yaml_documents(directory / entry["path"]):
        if not isinstance(patch, dict):
            raise KustomizeError(f"{entry['path']}: JSON 6902 patches are not supported")
        targets = [r for r in resources if _key(r) == _key(patch)]
        if len(targets) != 1:
            raise KustomizeError(f"{entry['path']}: {_key(patch)} matches {len(targets)} resources")
        target = targets[0]
        patched = strategic_merge(target, patch)
        target.clear()
        target.update(patched)


# --- build ----------------------------------------------------------------------------------
def _accumulate(directory: Path, resources: list[Resource], *, component: bool) -> None:
    kustomization = yaml.safe_load(_kustomization_file(directory).read_text(encoding="utf-8"))
    unknown = set(kustomization) - KNOWN_FIELDS
    if unknown:
        raise KustomizeError(f"{directory}: fields not supported: {sorted(unknown)}")
    expected_kind = "Component" if component else "Kustomization"
    if kustomization.get("kind", "Kustomization") != expected_kind:
        raise KustomizeError(f"{directory}: expected kind {expected_kind}")

    for entry in kustomization.get("resources") or []:
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(build(path))
        else:
            resources.extend(_load_yaml_documents(path))
    for entry in kustomization.get("components") or []:
        _accumulate((directory / entry).resolve(), resources, component=True)

    no_hash = bool((kustomization.get("generatorOptions") or {}).get("disableNameSuffixHash"))
    if set(kustomization.get("generatorOptions") or {}) - {"disableNameSuffixHash"}:
        raise KustomizeError(f"{directory}: generatorOptions other than disableNameSuffixHash")
    for field, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
        for spec in kustomization.get(field) or []:
            generated = _generate(kind, spec, directory, no_hash)
            _apply_generated(resources, generated, spec.get("behavior", "create"))

    for entry in kustomization.get("patches") or []:
        _patch(resources, entry, directory)
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED_KINDS:
                resource["metadata"]["namespace"] = kustomization["namespace"]
    _set_labels(resources, kustomization.get("labels") or [])
    _set_images(resources, kustomization.get("images") or [])


def build(directory: str | Path) -> list[Resource]:
    """Renders the kustomization in ``directory`` to a list of resources."""
    resources: list[Resource] = []
    _accumulate(Path(directory).resolve(), resources, component=False)
    seen: set[tuple[str, str, str]] = set()
    for resource in resources:
        ident = (*_key(resource), resource["metadata"].get("namespace", ""))
        if ident in seen:
            raise KustomizeError(f"duplicate resource {ident}")
        seen.add(ident)
    return resources


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} KUSTOMIZATION_DIR", file=sys.stderr)
        return 2
    yaml.safe_dump_all(build(argv[1]), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
