"""deploy/: the cluster examples (docker-compose, KubeRay) and the CPU image's Dockerfile.

Docker and Kubernetes do not run on the machines that run this suite, so what is checked is what can
be without them: the YAML parses; every CLIPORA_* variable they set is a real setting (a renamed
setting would otherwise leave an example silently wrong); the compose file has the services the
README names, one shared volume at one path on every node that runs clips, gateways on Ray with the
head's address; the KubeRay gateways point at the head's service; hadolint passes on the Dockerfile.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.config import Settings
from http_gateway.config import GatewaySettings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
KNOWN = {f"CLIPORA_{f.name.upper()}" for cls in (Settings, GatewaySettings) for f in dataclasses.fields(cls)}


def _env_names(doc: Any) -> set[str]:
    return set(re.findall(r"\bCLIPORA_[A-Z0-9_]+", yaml.safe_dump(doc)))


def test_the_examples_set_only_real_settings():
    for path in (DEPLOY / "docker-compose.yml", DEPLOY / "kuberay-raycluster.yaml"):
        docs = list(yaml.safe_load_all(path.read_text()))
        names = set().union(*(_env_names(d) for d in docs))
        assert names and names <= KNOWN, (path.name, names - KNOWN)


def test_the_compose_file_is_a_cluster_on_one_shared_volume():
    doc = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = doc["services"]
    assert {"postgres", "ray-head", "ray-worker", "gateway-a", "gateway-b"} <= set(services)
    assert set(doc["volumes"]) == {"pgdata", "shared"}
    for name in ("ray-head", "ray-worker", "gateway-a", "gateway-b"):
        svc = services[name]
        assert "shared:/data" in svc["volumes"], name  # job folders are passed by path: the same on every node
        env = svc["environment"]
        assert env["CLIPORA_DATA_DIR"] == "/data" and env["CLIPORA_EXECUTOR"] == "ray"
        assert env["CLIPORA_RAY_ADDRESS"] == "ray-head:6380"
        assert env["CLIPORA_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "--port=6380" in services["ray-head"]["command"]
    for name in ("gateway-a", "gateway-b"):
        assert "ray start --address=ray-head:6380 --num-cpus=0" in services[name]["command"][0]
    GatewaySettings.from_env(environ=services["gateway-a"]["environment"], workers=1)  # valid together


def test_the_kuberay_gateways_join_the_head_and_mount_the_shared_claim():
    docs = {d["kind"]: d for d in yaml.safe_load_all((DEPLOY / "kuberay-raycluster.yaml").read_text())}
    assert {"PersistentVolumeClaim", "RayCluster", "Deployment"} <= set(docs)
    assert docs["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]
    ray_cluster = docs["RayCluster"]
    head_svc = f"{ray_cluster['metadata']['name']}-head-svc"
    gateway = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in gateway["env"]}
    assert env["CLIPORA_RAY_ADDRESS"] == f"{head_svc}:6379" and env["CLIPORA_EXECUTOR"] == "ray"
    assert f"--address={head_svc}:6379" in gateway["args"][0]
    groups = {g["groupName"]: g for g in ray_cluster["spec"]["workerGroupSpecs"]}
    assert groups["gpu"]["rayStartParams"]["num-gpus"] == "1"
    claims = [v["persistentVolumeClaim"]["claimName"]
              for spec in [ray_cluster["spec"]["headGroupSpec"], *groups.values()]
              for v in spec["template"]["spec"]["volumes"]]
    assert set(claims) == {"clipora-shared"}


def test_hadolint_passes_on_the_dockerfile():
    hadolint = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (make install brings it)")
    r = subprocess.run([hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
