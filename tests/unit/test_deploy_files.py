"""The Dockerfile and deploy/kubernetes/ against the repository and against each other: what
they copy exists and is not ignored, ports, probes and labels agree, the pods run as non-root
on a read-only root, and the ConfigMap variant, laid out as kubelet lays out a ConfigMap volume,
is a store pdp serves. (tests/integration/test_replicas.py runs the image's HEALTHCHECK.)"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each instruction, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def ignored(path: str) -> bool:
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    parts = path.split("/")
    return any(
        fnmatch.fnmatch(path, p) or fnmatch.fnmatch(parts[0], p) or p == path for p in patterns
    )


def test_the_image_is_slim_non_root_and_serves_the_store_read_only() -> None:
    instructions = dockerfile()
    froms = [args for kind, args in instructions if kind == "FROM"]
    assert all(f.split()[0] == "python:3.11-slim" for f in froms)
    users = [args for kind, args in instructions if kind == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    entry = [json.loads(args) for kind, args in instructions if kind == "ENTRYPOINT"]
    assert entry == [["pdp", "serve"]]
    env = " ".join(args for kind, args in instructions if kind == "ENV")
    assert "PDP_STORE=/store" in env and "PDP_WORKERS=" in env
    assert '"/store"' in " ".join(args for kind, args in instructions if kind == "VOLUME")
    health = [args for kind, args in instructions if kind == "HEALTHCHECK"]
    assert health and "urllib.request" in health[0] and "/healthz" in health[0]
    exposed = {int(p) for kind, args in instructions if kind == "EXPOSE" for p in args.split()}
    ports = {int(m) for m in re.findall(r"PDP_(?:HTTP|GRPC)=0\.0\.0\.0:(\d+)", env)}
    assert exposed == ports == {8180, 50051}


def test_what_the_image_copies_exists_and_is_not_ignored() -> None:
    for kind, args in dockerfile():
        if kind != "COPY" or args.startswith("--from"):
            continue
        *sources, _ = args.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert not ignored(source), f"COPY {source}: excluded by .dockerignore"
    # and what the package needs at run time is inside what is copied
    for needed in ("pdp/store/managed", "server/pdp_server/openapi.json", "README.md"):
        assert not ignored(needed) and (ROOT / needed).exists()


def manifests(directory: Path) -> list[dict[str, Any]]:
    """Every document a kustomization lists, following its bases."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    out: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        path = directory / resource
        assert path.exists(), f"{directory}/kustomization.yaml: {resource} does not exist"
        if path.is_dir():
            out += manifests(path)
        else:
            out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]


@pytest.mark.parametrize("variant", [KUBE, KUBE / "configmap"], ids=["git-sync", "configmap"])
def test_each_variant_is_a_consistent_deployment(variant: Path) -> None:
    documents = manifests(variant)
    (deployment,) = by_kind(documents, "Deployment")
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    spec = pod["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001  # the image's user
    (pdp,) = [c for c in spec["containers"] if c["name"] == "pdp"]
    assert pdp["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pdp["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= pdp["resources"]["requests"].keys()
    assert pdp["securityContext"]["readOnlyRootFilesystem"] is True
    assert pdp["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e.get("value") for e in pdp["env"]}
    mounts = {m["mountPath"]: m for m in pdp["volumeMounts"]}
    store_mount = next(p for p in mounts if env["PDP_STORE"].startswith(p))
    assert mounts[store_mount].get("readOnly") is True, "the store is mounted read-only"
    assert "/tmp" in mounts, "a read-only root needs a writable /tmp for the run directory"
    ports = {p["name"]: p["containerPort"] for p in pdp["ports"]}
    assert ports == {"http": 8180, "grpc": 50051}
    for service in by_kind(documents, "Service"):
        assert service["spec"]["selector"].items() <= labels.items()
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports.keys()
    (budget,) = by_kind(documents, "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (autoscaler,) = by_kind(documents, "HorizontalPodAutoscaler")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert autoscaler["spec"]["minReplicas"] >= 2  # with maxUnavailable 1, one always serves
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["terminationGracePeriodSeconds"] > 40  # pdp's own clean stop takes up to 40 s


def test_git_sync_publishes_the_link_pdp_serves() -> None:
    (deployment,) = by_kind(manifests(KUBE), "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    (pdp,) = [c for c in spec["containers"] if c["name"] == "pdp"]
    store = next(e["value"] for e in pdp["env"] if e["name"] == "PDP_STORE")
    syncs = [c for c in spec["containers"] + spec["initContainers"] if "git-sync" in c["image"]]
    assert len(syncs) == 2  # the first checkout before pdp starts, then the sidecar
    assert any("--one-time" in c["args"] for c in syncs)
    for sync in syncs:
        flags = dict(a.removeprefix("--").split("=", 1) for a in sync["args"] if "=" in a)
        (mount,) = [m["mountPath"] for m in sync["volumeMounts"] if m["name"] == "store"]
        assert f"{flags['root']}/{flags['link']}" == store
        assert mount == flags["root"]


def kubelet_volume(configmap: dict[str, Any], items: list[dict[str, str]], target: Path) -> None:
    """A ConfigMap volume as kubelet writes it: the files in a timestamped directory, a `..data`
    link to it, and a link per top-level name into `..data`."""
    stamp = target / "..2026_12_03_10_00_00.000000001"
    for item in items:
        path = stamp / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(configmap["data"][item["key"]])
    (target / "..data").symlink_to(stamp.name)
    for top in {item["path"].split("/")[0] for item in items}:
        (target / top).symlink_to(f"..data/{top}")


def test_the_configmap_variant_is_a_store_pdp_serves(tmp_path: Path) -> None:
    documents = manifests(KUBE / "configmap")
    (configmap,) = by_kind(documents, "ConfigMap")
    (deployment,) = by_kind(documents, "Deployment")
    (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    items = volume["configMap"]["items"]
    assert {i["key"] for i in items} == configmap["data"].keys(), "every key has its path"
    kubelet_volume(configmap, items, tmp_path)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PDP_")}

    def check(action: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pdp.cli", "check", "--store", str(tmp_path)]
        command += ["--principal", "alice", "--action", action]
        command += ["--resource", "arn:aws:s3:::reports/2026/q4.csv"]
        return subprocess.run(command, capture_output=True, text=True, env=environment)

    allowed, denied = check("s3:GetObject"), check("s3:PutObject")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr  # exit 0: Allow
    assert denied.returncode == 2, denied.stdout + denied.stderr  # exit 2: Deny
