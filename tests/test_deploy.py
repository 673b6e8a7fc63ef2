"""The deployment files, checked offline: deploy/Dockerfile, .dockerignore, deploy/kubernetes.

Every overlay is rendered by a small kustomize written here (the subset the manifests use:
resources, components, strategic-merge patches, images, namespace; anything else is refused,
not ignored) and validated against the Kubernetes JSON schemas that ``kubernetes-validate``
ships, strictly (unknown fields fail), for the oldest supported and the newest Kubernetes.
Where a real kustomize is on PATH (``kustomize`` or ``kubectl kustomize``), the overlays are
rendered with it too and both renderings must agree, which keeps the small one honest.
Then the properties the service relies on are checked on the rendered objects.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KUBE = DEPLOY / "kubernetes"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

OVERLAYS = ("dev", "production")
TARGETS = {"base": KUBE / "base", **{name: KUBE / "overlays" / name for name in OVERLAYS}}
# the oldest Kubernetes the manifests support (native gRPC probes, matchLabelKeys) and the newest known
K8S_VERSIONS = tuple(dict.fromkeys(("1.29.0", kubernetes_validate.latest_version())))

APP_UID = 10001
SERVER = "routerisk"
GRPC_PORT = 50051
HTTP_PORT = 8080  # Connect and gRPC-Web (issue 17)
METRICS_PORT = 9090
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
# names the manifests set that no released part of the service reads yet: keep this list short
NOT_YET_READ: set[str] = set()


# ------------------------------------------------------------------------------------------
# a minimal kustomize
# ------------------------------------------------------------------------------------------


class RenderError(Exception):
    """The manifests use something this renderer does not implement (or got it wrong)."""


# list fields merged item by item in a strategic-merge patch (Kubernetes' patchMergeKey; kustomize
# keys topologySpreadConstraints by both fields); every other list is replaced whole
MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "imagePullSecrets": ("name",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
}
# merge-keyed lists whose key depends on where they are: refused rather than guessed
UNSUPPORTED_PATCH_LISTS = {"ports"}
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "components", "patches", "images", "namespace"}


def _load_all(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def render(directory: Path) -> list[dict[str, Any]]:
    """``kustomize build directory`` for the subset the manifests use."""
    return _build(directory, "Kustomization", [])


def _build(directory: Path, kind: str, accumulated: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (kustomization,) = _load_all(directory / "kustomization.yaml")
    if kustomization.get("kind", "Kustomization") != kind:
        raise RenderError(f"{directory}: expected a {kind}, found {kustomization.get('kind')}")
    unsupported = set(kustomization) - KUSTOMIZATION_FIELDS
    if unsupported:
        raise RenderError(f"{directory}: fields this renderer does not implement: {sorted(unsupported)}")
    resources = list(accumulated)
    for entry in kustomization.get("resources", []):
        target = (directory / entry).resolve()
        resources += _build(target, "Kustomization", []) if target.is_dir() else _load_all(target)
    # a component adds its resources to, and patches, everything accumulated so far
    for entry in kustomization.get("components", []):
        resources = _build((directory / entry).resolve(), "Component", resources)
    for entry in kustomization.get("patches", []):
        if set(entry) != {"path"}:
            raise RenderError(f"{directory}: only `patches: - path:` (strategic merge) is implemented: {entry}")
        for patch in _load_all(directory / entry["path"]):
            _apply_patch(resources, patch, directory / entry["path"])
    for image in kustomization.get("images", []):
        _set_image(resources, image)
    if "namespace" in kustomization:
        for resource in resources:
            resource["metadata"]["namespace"] = kustomization["namespace"]
    ids = [_resource_id(r) for r in resources]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise RenderError(f"{directory}: resources defined twice: {sorted(duplicates)}")
    return resources


def _resource_id(resource: dict[str, Any]) -> str:
    meta = resource["metadata"]
    return f"{resource['kind']}/{meta.get('namespace', '')}/{meta['name']}"


def _apply_patch(resources: list[dict[str, Any]], patch: dict[str, Any], source: Path) -> None:
    targets = [
        r for r in resources if r["kind"] == patch["kind"] and r["metadata"]["name"] == patch["metadata"]["name"]
    ]
    if len(targets) != 1:
        raise RenderError(f"{source}: patch of {patch['kind']}/{patch['metadata']['name']} matches {len(targets)}")
    body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind", "metadata")}
    meta_patch = {k: v for k, v in patch["metadata"].items() if k != "name"}
    _merge(targets[0], body, "")
    _merge(targets[0]["metadata"], meta_patch, "metadata")


def _merge(original: dict[str, Any], patch: dict[str, Any], path: str) -> None:
    for key, value in patch.items():
        where = f"{path}.{key}"
        if key.startswith("$"):
            raise RenderError(f"{where}: directive not implemented here")
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict) and isinstance(original.get(key), dict):
            _merge(original[key], value, where)
        elif isinstance(value, list) and isinstance(original.get(key), list) and key in MERGE_KEYS:
            original[key] = _merge_list(original[key], value, MERGE_KEYS[key], where)
        elif isinstance(value, list) and key in UNSUPPORTED_PATCH_LISTS:
            raise RenderError(f"{where}: patching this list is not implemented here")
        else:
            original[key] = copy.deepcopy(value)


def _merge_list(original: list[Any], patch: list[Any], keys: tuple[str, ...], path: str) -> list[Any]:
    merged = copy.deepcopy(original)
    for item in patch:
        item_key = tuple(item.get(k) for k in keys)
        found = [m for m in merged if tuple(m.get(k) for k in keys) == item_key]
        directive = item.get("$patch")
        if directive == "delete":
            if not found:
                raise RenderError(f"{path}: `$patch: delete` of {item_key}, which is not there")
            merged.remove(found[0])
        elif directive is not None:
            raise RenderError(f"{path}: `$patch: {directive}` not implemented here")
        elif found:
            _merge(found[0], item, f"{path}[{item_key}]")
        else:
            merged.append(copy.deepcopy(item))
    return merged


def _image_name(image: str) -> str:
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def _set_image(resources: list[dict[str, Any]], image: dict[str, Any]) -> None:
    for container in (c for r in resources for c in _all_containers(r)):
        if "image" not in container or _image_name(container["image"]) != image["name"]:
            continue
        name = image.get("newName", image["name"])
        if "digest" in image:
            container["image"] = f"{name}@{image['digest']}"
        elif "newTag" in image:
            container["image"] = f"{name}:{image['newTag']}"
        else:
            container["image"] = name + container["image"][len(_image_name(container["image"])) :]


def _all_containers(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from value
            else:
                yield from _all_containers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _all_containers(value)


def _canonical(node: Any) -> Any:
    """Order-insensitive for lists of objects (kustomize moves patched items), ordered otherwise."""
    if isinstance(node, dict):
        return {k: _canonical(v) for k, v in node.items()}
    if isinstance(node, list):
        items = [_canonical(v) for v in node]
        if items and all(isinstance(i, dict) for i in items):
            return sorted(items, key=lambda i: json.dumps(i, sort_keys=True))
        return items
    return node


def _real_kustomize() -> list[str] | None:
    """A kustomize that knows components (kustomize >= 4), when one is installed."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    try:
        version = subprocess.run(
            [kubectl, "version", "--client"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"Kustomize Version: v(\d+)", version)
    return [kubectl, "kustomize"] if found and int(found.group(1)) >= 4 else None


# ------------------------------------------------------------------------------------------
# helpers on rendered objects
# ------------------------------------------------------------------------------------------

_RENDERED: dict[str, list[dict[str, Any]]] = {}


def rendered(target: str) -> list[dict[str, Any]]:
    if target not in _RENDERED:
        _RENDERED[target] = render(TARGETS[target])
    return copy.deepcopy(_RENDERED[target])


def find(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def has(resources: list[dict[str, Any]], kind: str, name: str) -> bool:
    return any(r["kind"] == kind and r["metadata"]["name"] == name for r in resources)


def pod_template(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return pod_template(workload)["spec"]


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in pod_spec(workload)["containers"] if c["name"] == name]
    return found


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def workloads(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in resources if r["kind"] in WORKLOAD_KINDS]


def server_deployment(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return find(resources, "Deployment", SERVER)


def quantity(value: str | int | float) -> float:
    """A Kubernetes quantity (the suffixes the manifests use) as a number."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda u: -len(u[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ------------------------------------------------------------------------------------------
# rendering and schema validation
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_renders_and_is_valid_kubernetes(target: str, k8s_version: str) -> None:
    resources = rendered(target)
    assert resources, f"{target} rendered nothing"
    problems = []
    for resource in resources:
        try:
            kubernetes_validate.validate(resource, k8s_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path)
            problems.append(f"{_resource_id(resource)} at {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{_resource_id(resource)}: no schema: {exc}")
    assert not problems, f"{target} against Kubernetes {k8s_version}:\n" + "\n".join(problems)


def test_schema_validation_catches_a_typo() -> None:
    """The validation above is strict: a misspelt field fails it."""
    deployment = server_deployment(rendered("production"))
    container(deployment, SERVER)["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_every_kustomization_is_rendered() -> None:
    """Components and overlays are all reachable from an overlay (nothing untested lies around)."""
    dirs = {p.parent for p in KUBE.rglob("kustomization.yaml")}
    used: set[Path] = set()

    def walk(directory: Path) -> None:
        used.add(directory)
        (k,) = _load_all(directory / "kustomization.yaml")
        for entry in k.get("resources", []) + k.get("components", []):
            if (directory / entry).is_dir():
                walk((directory / entry).resolve())

    for path in TARGETS.values():
        walk(path.resolve())
    assert dirs == used, f"kustomizations no overlay uses: {sorted(map(str, dirs - used))}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_same_output_as_kustomize(overlay: str) -> None:
    command = _real_kustomize()
    if command is None:
        pytest.skip("no kustomize >= 4 on PATH (kustomize or kubectl): only the built-in renderer was checked")
    result = subprocess.run([*command, str(TARGETS[overlay])], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    theirs = {_resource_id(r): _canonical(r) for r in yaml.safe_load_all(result.stdout) if r}
    ours = {_resource_id(r): _canonical(r) for r in rendered(overlay)}
    assert sorted(theirs) == sorted(ours)
    for rid in sorted(ours):
        assert ours[rid] == theirs[rid], rid


def test_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml]\nconfigMapGenerator: []\n")
    with pytest.raises(RenderError, match="configMapGenerator"):
        render(tmp_path)


# ------------------------------------------------------------------------------------------
# the server Deployment
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_server_probes_are_grpc_health_and_the_http_port(overlay: str) -> None:
    """Startup and readiness on gRPC health (NOT_SERVING while loading and draining); liveness on
    the HTTP port's /healthz, so a wedged HTTP thread restarts the pod."""
    c = container(server_deployment(rendered(overlay)), SERVER)
    for probe in ("startupProbe", "readinessProbe"):
        assert c[probe]["grpc"] == {"port": GRPC_PORT}, probe
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"grpc": GRPC_PORT, "http": HTTP_PORT, "metrics": METRICS_PORT}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_server_shutdown_drains_before_the_kill(overlay: str) -> None:
    deployment = server_deployment(rendered(overlay))
    spec = pod_spec(deployment)
    c = container(deployment, SERVER)
    grace = float(env_of(c)["ROUTERISK_GRACE_SECONDS"]["value"])
    command = c["lifecycle"]["preStop"]["exec"]["command"]
    assert Path(command[0]).name == "sleep"
    pre_stop = float(command[1])
    assert (spec["terminationGracePeriodSeconds"], pre_stop, grace) == (40, 5, 25)
    # the kubelet's SIGKILL comes after the preStop sleep and the whole drain
    assert pre_stop + grace < spec["terminationGracePeriodSeconds"]
    # health is NOT_SERVING while draining: liveness must not restart a draining pod
    live = c["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] > grace


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_server_pod_is_spread_and_scraped(overlay: str) -> None:
    deployment = server_deployment(rendered(overlay))
    template = pod_template(deployment)
    keys = {t["topologyKey"] for t in template["spec"]["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in template["spec"]["topologySpreadConstraints"]:
        assert selects(constraint["labelSelector"]["matchLabels"], template["metadata"]["labels"])
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(METRICS_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"
    config = find(rendered(overlay), "ConfigMap", "routerisk-config")["data"]
    assert config["ROUTERISK_METRICS_ADDRESS"] == f"0.0.0.0:{METRICS_PORT}"
    assert config["ROUTERISK_ADDRESS"] == f"0.0.0.0:{GRPC_PORT}"
    assert config["ROUTERISK_HTTP_ADDRESS"] == f"0.0.0.0:{HTTP_PORT}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_server_has_no_replica_count_the_hpa_owns_it(overlay: str) -> None:
    resources = rendered(overlay)
    assert "replicas" not in server_deployment(resources)["spec"]
    hpa = find(resources, "HorizontalPodAutoscaler", SERVER)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": SERVER}
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_exposes_grpc_as_h2c_and_metrics(overlay: str) -> None:
    resources = rendered(overlay)
    service = find(resources, "Service", SERVER)
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["grpc"]["port"] == GRPC_PORT and ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"
    assert ports["metrics"]["port"] == METRICS_PORT
    assert ports["http"]["port"] == HTTP_PORT and ports["http"]["targetPort"] == "http"
    server_labels = pod_template(server_deployment(resources))["metadata"]["labels"]
    selector = service["spec"]["selector"]
    assert selects(selector, server_labels)
    # only server pods: not the poller, not the layer Job, not Redis
    others = [w for w in workloads(resources) if w["metadata"]["name"] != SERVER]
    assert others, "expected components beside the server"
    for other in others:
        assert not selects(selector, pod_template(other)["metadata"]["labels"]), other["metadata"]["name"]


# ------------------------------------------------------------------------------------------
# every workload
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_locked_down_and_bounded(overlay: str) -> None:
    for workload in workloads(rendered(overlay)):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        assert spec.get("automountServiceAccountToken") is False, name
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in spec["containers"] + spec.get("initContainers", []):
            where = f"{name}/{c['name']}"
            security = {**pod_security, **c.get("securityContext", {})}
            assert security["runAsNonRoot"] is True, where
            assert isinstance(security.get("runAsUser"), int) and security["runAsUser"] > 0, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security.get("privileged", False) is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in security["capabilities"], where
            resources = c["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert "memory" in resources["limits"], where
            for kind in ("cpu", "memory"):
                if kind in resources["limits"]:
                    assert quantity(resources["requests"][kind]) <= quantity(resources["limits"][kind]), where
            assert ":" in c["image"].rsplit("/", 1)[-1] or "@" in c["image"], f"{where}: untagged image"
            assert not c["image"].endswith(":latest"), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_routerisk_containers_run_as_the_image_user_with_a_writable_tmp(overlay: str) -> None:
    for workload in workloads(rendered(overlay)):
        spec = pod_spec(workload)
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            if not _image_name(c["image"]).endswith("routerisk"):
                continue
            where = f"{workload['metadata']['name']}/{c['name']}"
            assert {**spec["securityContext"], **c["securityContext"]}["runAsUser"] == APP_UID, where
            (tmp,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert "emptyDir" in volumes[tmp["name"]], where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_reference_resolves(overlay: str) -> None:
    resources = rendered(overlay)
    namespaces = {r["metadata"].get("namespace") for r in resources}
    assert len(namespaces) == 1 and None not in namespaces, namespaces
    for workload in workloads(resources):
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        if "selector" in workload["spec"]:
            assert selects(workload["spec"]["selector"]["matchLabels"], pod_template(workload)["metadata"]["labels"])
        if "serviceAccountName" in spec:
            assert has(resources, "ServiceAccount", spec["serviceAccountName"]), name
        for c in spec["containers"]:
            for source in c.get("envFrom", []):
                if "configMapRef" in source:
                    assert has(resources, "ConfigMap", source["configMapRef"]["name"]), name
            for entry in c.get("env", []):
                ref = entry.get("valueFrom", {}).get("configMapKeyRef")
                if ref:
                    assert ref["key"] in find(resources, "ConfigMap", ref["name"])["data"], f"{name}: {ref}"
                secret = entry.get("valueFrom", {}).get("secretKeyRef")
                if secret and not has(resources, "Secret", secret["name"]):
                    # Secrets are created by the operator, never committed (deploy/README.md)
                    assert re.fullmatch(r"routerisk-[a-z-]+", secret["name"]), f"{name}: {secret}"
            mounted = {m["name"] for m in c.get("volumeMounts", [])}
            assert mounted <= {v["name"] for v in spec.get("volumes", [])}, name
        for volume in spec.get("volumes", []):
            claim = volume.get("persistentVolumeClaim")
            if claim:
                assert has(resources, "PersistentVolumeClaim", claim["claimName"]), name
    server_labels = pod_template(server_deployment(resources))["metadata"]["labels"]
    pdb = find(resources, "PodDisruptionBudget", SERVER)
    assert selects(pdb["spec"]["selector"]["matchLabels"], server_labels)
    assert ("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"])
    account = find(resources, "ServiceAccount", SERVER)
    assert account["automountServiceAccountToken"] is False


def _known_environment_names() -> set[str]:
    from service.config import Settings

    names = {f"ROUTERISK_{field.upper()}" for field in Settings.model_fields}
    sources = [ROOT / "README.md", *sorted((ROOT / "service").glob("*.py"))]
    for path in sources:
        names |= set(re.findall(r"\bROUTERISK_[A-Z0-9_]+\b", path.read_text(encoding="utf-8")))
    return names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_environment_names_are_the_service_s(overlay: str) -> None:
    """A misspelt ROUTERISK_* name is silently ignored by the service (extra="ignore"): catch it here."""
    resources = rendered(overlay)
    used: set[str] = set()
    for resource in resources:
        if resource["kind"] == "ConfigMap":
            used |= set(resource.get("data", {}))
    for c in (c for w in workloads(resources) for c in pod_spec(w)["containers"]):
        used |= set(env_of(c))
    used = {n for n in used if n.startswith("ROUTERISK_")}
    unknown = used - _known_environment_names() - NOT_YET_READ
    assert not unknown, f"set in the manifests but read by nothing: {sorted(unknown)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configuration_values_are_accepted_by_the_service(overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.config import Settings

    resources = rendered(overlay)
    c = container(server_deployment(resources), SERVER)
    values = dict(find(resources, "ConfigMap", "routerisk-config")["data"])
    values |= {name: e["value"] for name, e in env_of(c).items() if "value" in e}
    for name in [n for n in os.environ if n.startswith("ROUTERISK_")]:
        monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings()
    assert settings.address == f"0.0.0.0:{GRPC_PORT}"
    assert settings.grace_seconds == 25
    assert settings.workers == 1


# ------------------------------------------------------------------------------------------
# the overlays and components
# ------------------------------------------------------------------------------------------


def test_dev_overlay_runs_its_own_redis() -> None:
    resources = rendered("dev")
    redis_service = find(resources, "Service", "routerisk-redis")
    redis = find(resources, "Deployment", "routerisk-redis")
    assert redis["spec"]["replicas"] == 1
    assert selects(redis_service["spec"]["selector"], pod_template(redis)["metadata"]["labels"])
    (port,) = redis_service["spec"]["ports"]
    url = env_of(container(server_deployment(resources), SERVER))["ROUTERISK_REDIS_URL"]
    assert "valueFrom" not in url
    assert url["value"] == f"redis://routerisk-redis:{port['port']}/0"
    assert not has(resources, "Job", "routerisk-layer-build")
    hpa = find(resources, "HorizontalPodAutoscaler", SERVER)
    assert hpa["spec"]["minReplicas"] == 1


def test_dev_overlay_runs_without_api_keys() -> None:
    """A ROUTERISK_API_KEYS_FILE that does not exist stops the server: dev sets none."""
    deployment = server_deployment(rendered("dev"))
    c = container(deployment, SERVER)
    assert "ROUTERISK_API_KEYS_FILE" not in env_of(c)
    assert all("secret" not in v for v in pod_spec(deployment)["volumes"])


def test_production_overlay() -> None:
    resources = rendered("production")
    base = rendered("base")
    assert not has(resources, "Deployment", "routerisk-redis"), "the dev Redis must not reach production"
    deployment = server_deployment(resources)
    c = container(deployment, SERVER)
    env = env_of(c)
    assert env["ROUTERISK_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "routerisk-redis",
        "key": "url",
        "optional": True,
    }
    hpa = find(resources, "HorizontalPodAutoscaler", SERVER)
    assert hpa["spec"]["minReplicas"] == 3
    assert hpa["spec"]["maxReplicas"] > 3
    base_limits = container(server_deployment(base), SERVER)["resources"]["limits"]
    for kind in ("cpu", "memory"):
        assert quantity(c["resources"]["limits"][kind]) > quantity(base_limits[kind]), kind
    assert find(resources, "PodDisruptionBudget", SERVER)["spec"].get("minAvailable", 1) < hpa["spec"]["minReplicas"]
    images = {c["image"] for w in workloads(resources) for c in pod_spec(w)["containers"]}
    assert len(images) == 1 and not images.pop().startswith("routerisk:"), "production pulls from its registry"


def test_production_api_keys_come_from_a_mounted_secret() -> None:
    resources = rendered("production")
    deployment = server_deployment(resources)
    c = container(deployment, SERVER)
    keys_file = Path(env_of(c)["ROUTERISK_API_KEYS_FILE"]["value"])
    (mount,) = [m for m in c["volumeMounts"] if Path(m["mountPath"]) == keys_file.parent]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"]]
    secret = volume["secret"]
    assert secret["secretName"] == "routerisk-api-keys"
    assert {"key": "api-keys", "path": keys_file.name} in secret["items"]
    assert not secret.get("optional", False), "production must not start without its keys"
    poller = find(resources, "Deployment", "routerisk-border-poller")
    key = env_of(container(poller, "border-poller"))["ROUTERISK_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert key["optional"] is False


def _cli_options(*path: str) -> set[str]:
    import typer.main

    from service.cli.app import app

    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {opt for param in command.params for opt in param.opts}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_border_poller(overlay: str) -> None:
    resources = rendered(overlay)
    poller = find(resources, "Deployment", "routerisk-border-poller")
    assert poller["spec"]["replicas"] == 1
    assert poller["spec"]["strategy"]["type"] == "Recreate", "never two pollers side by side"
    c = container(poller, "border-poller")
    assert c["command"] == ["routerisk"]
    server = f"{SERVER}:{GRPC_PORT}"
    assert c["args"] == ["border", "poll", "--url", "$(ROUTERISK_BORDER_FEED_URL)", "--server", server]
    assert {"--url", "--server"} <= _cli_options("border", "poll")
    # $(VAR) in args expands only from variables the container defines
    assert "ROUTERISK_BORDER_FEED_URL" in env_of(c)
    assert has(resources, "Service", SERVER)
    # the servers do not poll the feed too
    server_container = container(server_deployment(resources), SERVER)
    assert "ROUTERISK_BORDER_FEED_URL" not in env_of(server_container)
    assert "ROUTERISK_BORDER_FEED_URL" not in find(resources, "ConfigMap", "routerisk-config")["data"]


def test_layer_job_builds_into_the_store_the_servers_read() -> None:
    resources = rendered("production")
    job = find(resources, "Job", "routerisk-layer-build")
    c = container(job, "layer-build")
    assert c["command"] == ["routerisk"]
    args = c["args"]
    assert args[:2] == ["layers", "build"]
    assert "--activate" in args
    out = args[args.index("--out") + 1]
    assert out == "/layers"
    assert {"--out", "--activate"} <= _cli_options("layers", "build")
    job_volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    (job_mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == out]
    assert not job_mount.get("readOnly", False)
    claim = job_volumes[job_mount["name"]]["persistentVolumeClaim"]["claimName"]
    assert "ReadWriteMany" in find(resources, "PersistentVolumeClaim", claim)["spec"]["accessModes"]

    deployment = server_deployment(resources)
    server = container(deployment, SERVER)
    layer_dir = env_of(server)["ROUTERISK_LAYER_DIR"]["value"]
    assert layer_dir == out
    (mount,) = [m for m in server["volumeMounts"] if m["mountPath"] == layer_dir]
    assert mount["readOnly"] is True, "only the Job writes to the layer store"
    (volume,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"]["claimName"] == claim


# ------------------------------------------------------------------------------------------
# Dockerfile and .dockerignore
# ------------------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comment lines dropped and continuations joined, as Docker does."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined: list[str] = []
    current = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            joined.append(current.strip())
        current = ""
    result = []
    for line in joined:
        instruction, _, arguments = line.partition(" ")
        result.append((instruction.upper(), arguments.strip()))
    return result


def dockerfile_stages() -> tuple[dict[str, str], list[list[tuple[str, str]]]]:
    """Global ARG defaults, and the instructions of each stage (each starts with its FROM)."""
    instructions = dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))
    global_args: dict[str, str] = {}
    stages: list[list[tuple[str, str]]] = []
    for instruction, arguments in instructions:
        if instruction == "FROM":
            stages.append([])
        if not stages:
            if instruction == "ARG" and "=" in arguments:
                name, _, value = arguments.partition("=")
                global_args[name.strip()] = value.strip().strip('"')
            continue
        stages[-1].append((instruction, arguments))
    return global_args, stages


def _expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)


def _env_names(arguments: str) -> list[str]:
    tokens = shlex.split(arguments)
    if tokens and "=" not in tokens[0]:
        return [tokens[0]]  # legacy `ENV NAME value`
    return [token.split("=", 1)[0] for token in tokens]


def test_dockerfile_is_multi_stage_with_a_pinned_slim_base() -> None:
    global_args, stages = dockerfile_stages()
    assert len(stages) >= 2, "builder and final stage"
    images = [_expand(stage[0][1], global_args).split()[0] for stage in stages]
    for image in images:
        match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", image)
        assert match, f"{image}: pin an exact python:X.Y.Z-slim-<debian> tag (and digest where known)"
        requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
        assert f">={match.group(1)}.{match.group(2)}" in requires, f"{image} vs requires-python {requires}"
    # the venv built in the builder is copied: both stages must have the same interpreter
    assert len(set(images)) == 1, images


def test_dockerfile_final_stage_has_no_compilers() -> None:
    _, stages = dockerfile_stages()
    final = stages[-1]
    compilers = re.compile(r"\b(gcc|g\+\+|cc|clang|build-essential|make|cmake|python3?-dev|libc6?-dev)\b")
    for instruction, arguments in final:
        if instruction == "RUN":
            assert not compilers.search(arguments), f"compiler in the final stage: RUN {arguments}"
    copies = [a for i, a in final if i == "COPY"]
    assert any("--from=builder" in a for a in copies), "the final stage copies the built venv"
    builder_runs = " ".join(a for i, a in stages[0] if i == "RUN")
    assert "build-essential" in builder_runs, "compilers belong in the builder"


def test_dockerfile_final_stage_runs_as_a_numeric_non_root_user() -> None:
    _, stages = dockerfile_stages()
    final = stages[-1]
    users = [a for i, a in final if i == "USER"]
    assert users, "no USER in the final stage: it would run as root"
    assert re.fullmatch(r"\d+(:\d+)?", users[-1]), f"USER {users[-1]}: numeric, so runAsNonRoot can verify it"
    assert int(users[-1].split(":")[0]) == APP_UID
    instructions = [i for i, _ in final]
    assert instructions.index("USER") > max(n for n, i in enumerate(instructions) if i in ("RUN", "COPY"))


def test_dockerfile_entrypoint_ports_and_python_flags() -> None:
    _, stages = dockerfile_stages()
    final = stages[-1]
    (entrypoint,) = [a for i, a in final if i == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["routerisk", "serve"], "exec form, so routerisk gets SIGTERM as PID 1"
    exposed = {int(p.split("/")[0]) for i, a in final if i == "EXPOSE" for p in a.split()}
    assert exposed == {GRPC_PORT, HTTP_PORT, METRICS_PORT}
    env = " ".join(a for i, a in final if i == "ENV")
    assert re.search(r"\bPYTHONDONTWRITEBYTECODE=1\b", env)
    assert re.search(r"\bPYTHONUNBUFFERED=1\b", env)


def test_dockerfile_holds_no_secrets() -> None:
    _, stages = dockerfile_stages()
    secretish = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEYS?\b|PRIVATE|CREDENTIAL|REDIS_URL|AUTH", re.I)
    for stage in stages:
        for instruction, arguments in stage:
            if instruction in ("ENV", "ARG"):
                for name in _env_names(arguments):
                    assert not secretish.search(name), f"{instruction} {name}: secrets come from Kubernetes Secrets"
            if instruction in ("COPY", "ADD"):
                assert not re.search(r"\.(pem|key|env)\b|id_rsa", arguments), f"{instruction} {arguments}"


def test_dockerfile_copies_every_package_of_the_wheel() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    _, stages = dockerfile_stages()
    sources: set[str] = set()
    for instruction, arguments in stages[0]:
        if instruction == "COPY" and "--from" not in arguments:
            parts = [p for p in arguments.split() if not p.startswith("--")]
            sources |= {p.rstrip("/").removeprefix("./") for p in parts[:-1]}
    assert packages | {"pyproject.toml", "README.md"} <= sources


def _match_parts(relative: str, pattern: str) -> bool:
    """A setuptools package-data glob: `*` does not cross `/`."""
    parts, globs = relative.split("/"), pattern.split("/")
    return len(parts) == len(globs) and all(fnmatch.fnmatchcase(p, g) for p, g in zip(parts, globs, strict=True))


def test_seed_files_are_package_data() -> None:
    """The image has the seeds only if the wheel does: every file ``seeds`` names is package data."""
    import seeds

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = project["tool"]["setuptools"]["package-data"]["seeds"]
    files = [v for v in vars(seeds).values() if isinstance(v, Path) and v.is_file()]
    files += list(seeds.DEMO_ROUTES.values())
    assert len(files) >= 5
    for path in files:
        relative = path.relative_to(seeds.SEEDS_DIR).as_posix()
        assert any(_match_parts(relative, g) for g in globs), f"seeds/{relative} is not package data"


def test_dockerignore_keeps_the_context_small_and_the_sources_in() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    normalised = {p.removeprefix("**/").rstrip("/") for p in patterns}
    for required in (".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", "tests", "bench"):
        assert required in normalised, f".dockerignore should exclude {required}"
    assert not any(p.startswith("!") for p in patterns)
    _, stages = dockerfile_stages()
    for instruction, arguments in stages[0]:
        if instruction == "COPY" and "--from" not in arguments:
            parts = [p for p in arguments.split() if not p.startswith("--")]
            for source in (p.rstrip("/").removeprefix("./") for p in parts[:-1]):
                excluded = [p for p in normalised if fnmatch.fnmatchcase(source, p)]
                assert not excluded, f"COPY {source} but .dockerignore excludes it ({excluded})"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_image_and_manifests_agree(overlay: str) -> None:
    """The ports the image exposes are the server's; its user is the one the pods run as."""
    _, stages = dockerfile_stages()
    (user,) = [a for i, a in stages[-1] if i == "USER"]
    c = container(server_deployment(rendered(overlay)), SERVER)
    security = {**pod_spec(server_deployment(rendered(overlay)))["securityContext"], **c["securityContext"]}
    assert user == f"{security['runAsUser']}:{security['runAsGroup']}"
    exposed = {int(p) for i, a in stages[-1] if i == "EXPOSE" for p in a.split()}
    assert exposed == {p["containerPort"] for p in c["ports"]}
