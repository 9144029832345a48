"""deploy/kubernetes/: every manifest valid (strictly: no unknown field) by the Kubernetes API schemas that the
`kubernetes-validate` package ships, and consistent with each other and with idp's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from idp.config import Settings, SettingsError, load_settings
from tests.deploy.conftest import KUBERNETES, SECRET, load_all_yaml, settings_fields

# The newest schemas shipped, and an older release still found in managed clusters.
VERSIONS = [kubernetes_validate.latest_version(), "1.30.0"]
FILES = sorted(KUBERNETES.glob("*.yaml"))


def resources() -> dict[str, dict[str, Any]]:
    """Every resource by kind (one of each kind here)."""
    found: dict[str, dict[str, Any]] = {}
    for path in FILES:
        for doc in load_all_yaml(path):
            assert doc["kind"] not in found, f"a second {doc['kind']} in {path.name}"
            found[doc["kind"]] = doc
    return found


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_valid_by_the_kubernetes_api_schema(path: Path, version: str) -> None:
    for doc in load_all_yaml(path):
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name} ({version}): {'/'.join(map(str, exc.absolute_path))}: {exc.message}")


def test_the_validator_catches_a_misspelt_field() -> None:
    deployment = resources()["Deployment"]
    container = {**deployment["spec"]["template"]["spec"]["containers"][0], "readinesProbe": {}}
    broken = {**deployment, "spec": {**deployment["spec"], "template": {"spec": {"containers": [container]}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[0], strict=True)


def test_all_the_pieces_are_there() -> None:
    assert set(resources()) == {
        "ConfigMap", "Secret", "Deployment", "Service", "Job", "HorizontalPodAutoscaler", "PodDisruptionBudget",
    }  # fmt: skip


def pod_of(kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = resources()[kind]["spec"]["template"]["spec"]
    return spec


def test_the_deployment_probes_rolls_and_runs_locked_down() -> None:
    deployment = resources()["Deployment"]
    spec = deployment["spec"]
    assert "replicas" not in spec  # the HorizontalPodAutoscaler owns the count
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = pod_of("Deployment")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "management", probe
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    writable = {m["mountPath"] for m in container["volumeMounts"]}
    assert writable == {"/tmp"}  # noqa: S108 - the pod's own emptyDir, the only writable path
    # preStop pause + uvicorn's graceful shutdown (20 s) fit in the grace period.
    assert pod["terminationGracePeriodSeconds"] > 5 + 20


def test_the_job_migrates_with_the_deployments_image_and_settings() -> None:
    job, server = pod_of("Job"), pod_of("Deployment")
    (migrate,), (serve,) = job["containers"], server["containers"]
    assert migrate["command"] == ["idp", "migrate"]
    assert job["restartPolicy"] == "Never"
    assert migrate["image"] == serve["image"]
    assert migrate["envFrom"] == serve["envFrom"]
    assert migrate["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["securityContext"]["runAsNonRoot"] is True


def test_selectors_and_references_agree() -> None:
    found = resources()
    deployment = found["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        found["Service"]["spec"]["selector"],
        found["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    # The migration Job's pods must not be taken for servers.
    job_labels = found["Job"]["spec"]["template"]["metadata"]["labels"]
    assert not found["Service"]["spec"]["selector"].items() <= job_labels.items()
    target = found["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert found["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2
    (container,) = pod_of("Deployment")["containers"]
    assert found["Service"]["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    # /metrics lives on the management port: the Service must not publish it.
    published = {port["targetPort"] for port in found["Service"]["spec"]["ports"]}
    assert published == {"http"}
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["management"] == int(found["ConfigMap"]["data"]["IDP_MANAGEMENT_PORT"])
    sources = {next(iter(s)): s[next(iter(s))]["name"] for s in container["envFrom"]}
    assert sources == {
        "configMapRef": found["ConfigMap"]["metadata"]["name"],
        "secretRef": found["Secret"]["metadata"]["name"],
    }


def test_the_secret_holds_the_secrets_and_the_config_map_the_rest() -> None:
    found = resources()
    secret, config = found["Secret"]["stringData"], found["ConfigMap"]["data"]
    assert set(secret) == {"IDP_SECRET_KEY", "IDP_ENCRYPTION_KEY", "IDP_DATABASE_URL", "IDP_SMTP_URL"}
    assert not set(secret) & set(config)
    assert set(secret) | set(config) <= settings_fields(), (set(secret) | set(config)) - settings_fields()


def as_settings(env: dict[str, str]) -> Settings:
    return load_settings(_env_file=None, **{k.removeprefix("IDP_").lower(): v for k, v in env.items()})


def test_the_settings_are_valid_once_the_secrets_are_filled_in() -> None:
    found = resources()
    filled = {name: SECRET for name in ("IDP_SECRET_KEY", "IDP_ENCRYPTION_KEY")}
    filled["IDP_DATABASE_URL"] = "postgresql+asyncpg://idp:pw@postgres:5432/idp"
    filled["IDP_SMTP_URL"] = "smtp://apikey:pw@smtp.example.com:587"
    settings = as_settings({**found["ConfigMap"]["data"], **filled})
    assert settings.issuer.startswith("https://")
    assert settings.trusted_proxy_networks
    assert settings.email_enabled
    assert settings.site_name == "Jobs Login"
    assert "@" in settings.mail_from


def test_the_template_placeholders_cannot_start_idp() -> None:
    found = resources()
    with pytest.raises(SettingsError) as refused:
        as_settings({**found["ConfigMap"]["data"], **found["Secret"]["stringData"]})
    assert "IDP_SECRET_KEY" in str(refused.value)
    assert "IDP_ENCRYPTION_KEY" in str(refused.value)
