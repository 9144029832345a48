"""deploy/prometheus and deploy/grafana: the rules and the dashboard parse, every alert has a summary, a description
and a runbook section, the compose overlay is valid and mounts what the provisioning expects, and every metric a
panel or an alert queries is in the /metrics of a real app after sign-ins, a token request and a back-channel
logout. With promtool (Debian's `prometheus` package): `promtool check` and `promtool test rules`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from idp.config import Settings
from tests.conftest import Running
from tests.deploy.conftest import DEPLOY, load_yaml
from tests.support.admin import tokens_for
from tests.support.oidc import make_client
from tests.support.pages import PASSWORD, csrf_from, make_user, submit_login
from tests.support.receiver import Receiver, receiver

PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
ALERTS = PROMETHEUS / "alerts.yml"
DASHBOARD = GRAFANA / "dashboards" / "idp.json"
OVERLAY = DEPLOY / "compose.observability.yaml"
RUNBOOK = DEPLOY / "README.md"
RULE_TESTS = Path(__file__).with_name("alerts.test.yml")
COMPOSE_SCHEMA = Path(__file__).with_name("compose-spec.json")
# Made by Prometheus itself for every target, not by idp.
PROMETHEUS_OWN = {"up"}
REQUIRE_PROMTOOL = os.environ.get("IDP_TEST_REQUIRE_PROMTOOL", "") not in ("", "0", "false")

StartApp = Callable[[Settings], Coroutine[Any, Any, Running]]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def expressions() -> dict[str, str]:
    """Every PromQL expression in the rules and the dashboard, by where it is."""
    found = {f"alert {rule['alert']}": rule["expr"] for rule in alert_rules()}
    for panel in panels():
        for target in panel["targets"]:
            found[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            # Grafana's label_values(<series selector>, <label>): the selector is PromQL, the label is not.
            query = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["query"]["query"])
            assert query, variable["query"]
            found[f"variable {variable['name']}"] = query.group(1)
    return found


# -- the metric names a PromQL expression reads ---------------------------------------------------------------

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_VARIABLES = re.compile(r"\$\{?\w+\}?")
_NAME = re.compile(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names `expr` selects: what is left once strings, label matchers, ranges, grouping clauses,
    Grafana variables, functions and keywords are taken out."""
    stripped = _STRINGS.sub('""', expr)
    stripped = _VARIABLES.sub("1", stripped)
    stripped = _MATCHERS.sub(" ", stripped)
    stripped = _RANGES.sub(" ", stripped)
    stripped = _GROUPING.sub(" ", stripped)
    names = set()
    for match in _NAME.finditer(stripped):
        is_function = stripped[match.end() :].lstrip().startswith("(")
        if not is_function and match.group().lower() not in _KEYWORDS:
            names.add(match.group())
    return names


def test_metric_names_of_an_expression() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (route, le) (rate(idp_http_request_duration_seconds_bucket{job="idp",'
        'route!="/metrics",instance=~"$instance"}[$__rate_interval]))) > 2 and on (route) '
        'sum(rate(idp_http_requests_total{status=~"5.."}[5m] offset 1h)) / ignoring(x) up or absent(up{job="idp"})'
    )
    assert metric_names(expr) == {"idp_http_request_duration_seconds_bucket", "idp_http_requests_total", "up"}
    assert metric_names('max by (kind) (deriv(idp_outbox_messages_queued{kind!~"a|b"}[15m])) > 0') == {
        "idp_outbox_messages_queued"
    }


# -- the files parse and say what to do -------------------------------------------------------------------------


def runbook_anchors() -> set[str]:
    """GitHub's anchors of deploy/README.md's headings: lower case, spaces to dashes, punctuation dropped."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", RUNBOOK.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_every_alert_has_a_summary_a_description_and_a_runbook_section() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), names
    assert len(rules) >= 10
    anchors = runbook_anchors()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook"}, rule["alert"]
        assert len(annotations["description"]) > 60, rule["alert"]
        file, anchor = annotations["runbook"].split("#")
        assert file == "deploy/README.md"
        assert anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in anchors, f"deploy/README.md has no section {rule['alert']}"
        assert 'job="idp"' in rule["expr"], f"{rule['alert']} must select the idp job"


def test_the_alerts_cover_what_on_call_needs() -> None:
    read = {name for rule in alert_rules() for name in metric_names(rule["expr"])}
    assert {
        "up",  # idp down
        "idp_http_requests_total",  # 5xx ratio
        "idp_http_request_duration_seconds_bucket",  # p99 latency
        "idp_login_attempts_total",  # sign-in failure spike
        "idp_lockouts_total",  # lockout spike
        "idp_password_pool_queue_length",  # password pool saturated
        "idp_outbox_messages_queued",  # outbox backlog
        "idp_outbox_messages_given_up_total",
        "idp_database_errors_total",
    } <= read


def test_the_dashboard_parses_and_every_panel_queries_the_chosen_prometheus() -> None:
    board = dashboard()
    assert board["uid"] == "idp-overview"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels():
        assert panel["title"], panel["id"]
        assert panel["description"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert 'job="idp"' in target["expr"], panel["title"]
            assert 'instance=~"$instance"' in target["expr"], panel["title"]


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    read = {name for panel in panels() for target in panel["targets"] for name in metric_names(target["expr"])}
    for wanted in (
        "idp_login_attempts_total",  # sign-ins and their outcomes per second
        "idp_second_step_attempts_total",  # second-step outcomes
        "idp_lockouts_total",
        "idp_http_request_duration_seconds_bucket",  # latency per endpoint
        "idp_password_pool_queue_length",
        "idp_outbox_messages_queued",  # outbox depth
        "idp_outbox_delivery_failures_total",
        "idp_database_pool_connections_in_use",
        "idp_database_errors_total",
    ):
        assert wanted in read, wanted


# -- provisioning and the compose overlay ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def overlay() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(OVERLAY)
    return document


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> the file or directory on the host (relative to deploy/) of each bind mount."""
    found = {}
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            found[target] = (DEPLOY / source).resolve()
    return found


def test_the_overlay_is_valid_alone_and_merged_with_compose_yaml(overlay: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text()))
    base = load_yaml(DEPLOY / "compose.yaml")
    # The overlay only adds services and volumes, so compose's merge is a union here.
    assert not set(overlay["services"]) & set(base["services"])
    merged = {
        **base,
        "services": {**base["services"], **overlay["services"]},
        "volumes": {**base["volumes"], **overlay["volumes"]},
    }
    for document in (overlay, merged):
        errors = list(validator.iter_errors(document))
        assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    for service in overlay["services"].values():
        assert set(service["networks"]) <= set(base["networks"])
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]


def test_prometheus_reaches_the_management_port_and_nothing_is_published_beyond_loopback(
    overlay: dict[str, Any],
) -> None:
    base = load_yaml(DEPLOY / "compose.yaml")
    management_port = base["x-idp-environment"]["IDP_MANAGEMENT_PORT"]
    prometheus = overlay["services"]["prometheus"]
    assert "edge" in prometheus["networks"]
    assert "edge" in base["services"]["idp"]["networks"]
    assert "data" not in prometheus["networks"]  # no route to PostgreSQL
    assert "depends_on" not in prometheus  # it must run, and alert, when idp does not
    for service in overlay["services"].values():
        for port in service["ports"]:
            assert port.startswith("127.0.0.1:"), port

    config_dir = mounts(prometheus)["/etc/prometheus"]
    assert config_dir == PROMETHEUS
    config = load_yaml(config_dir / "prometheus.yml")
    for rule_file in config["rule_files"]:
        assert (config_dir / rule_file).is_file()
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "idp"]
    assert job["metrics_path"] == "/metrics"
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["idp"]
    assert str(discovery["port"]) == management_port


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboard(overlay: dict[str, Any]) -> None:
    grafana = overlay["services"]["grafana"]
    mounted = mounts(grafana)
    assert mounted["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    (datasource,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in overlay["services"]
    (provider,) = load_yaml(GRAFANA / "provisioning" / "dashboards" / "idp.yml")["providers"]
    dashboards_in_container = provider["options"]["path"]
    assert mounted[dashboards_in_container] == DASHBOARD.parent
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{dashboards_in_container}/{DASHBOARD.name}"
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")


def test_the_kubernetes_scrape_job_keeps_the_pods_the_deployment_annotates() -> None:
    job = load_yaml(PROMETHEUS / "scrape-kubernetes.yml")["scrape_configs"][0]
    assert job["job_name"] == "idp"
    deployment = load_yaml(DEPLOY / "kubernetes" / "deployment.yaml")["spec"]["template"]["metadata"]
    keep = job["relabel_configs"][0]
    values = [deployment["labels"][name] for name in ("app.kubernetes.io/name", "app.kubernetes.io/component")]
    assert re.fullmatch(keep["regex"], ";".join(values))
    assert deployment["annotations"]["prometheus.io/scrape"] == "true"
    assert deployment["annotations"]["prometheus.io/path"] == "/metrics"


# -- every metric queried is in a real app's /metrics ---------------------------------------------------------------


@pytest.fixture
def board() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


async def exposed_after_traffic(running: Running, board: Receiver) -> set[str]:
    """/metrics of the management port after a failed and a good sign-in, a token request and a back-channel
    logout delivered: every sample name there."""
    person = await make_user(running.idp)
    rp = await make_client(running.idp, backchannel_logout_uri=board.uri)
    async with running.client() as browser:
        assert (await submit_login(browser, person.email, "not the password")).status_code == 400
        assert (await submit_login(browser, person.email, PASSWORD)).status_code == 303
        assert "access_token" in await tokens_for(running, browser, rp)
        page = await browser.get("/logout")
        assert (await browser.post("/logout", data={"csrf_token": csrf_from(page.text)})).status_code == 200
    assert await running.idp.outbox.run_once() == 1
    assert len(board.tokens) == 1
    await running.idp.outbox.refresh_queue_metric()
    async with running.client(base_url="http://testserver:9000") as management:
        response = await management.get("/metrics")
    assert response.status_code == 200
    return {sample.name for family in text_string_to_metric_families(response.text) for sample in family.samples}


async def test_every_metric_a_panel_or_an_alert_reads_is_exposed(
    start_app: StartApp, make_settings: Callable[..., Settings], board: Receiver
) -> None:
    # The worker stays idle: the test delivers the logout token itself.
    running = await start_app(make_settings(outbox_poll_seconds=300, backchannel_logout_timeout_seconds=2))
    exposed = await exposed_after_traffic(running, board)
    missing = {
        where: sorted(metric_names(expr) - exposed - PROMETHEUS_OWN)
        for where, expr in expressions().items()
        if metric_names(expr) - exposed - PROMETHEUS_OWN
    }
    assert not missing, missing
    # And the other way round: each of idp's own metrics is on the dashboard.
    shown = {name for panel in panels() for target in panel["targets"] for name in metric_names(target["expr"])}
    families = {re.sub(r"_(total|created|bucket|count|sum)$", "", name) for name in exposed if name.startswith("idp_")}
    unshown = {family for family in families if not any(name.startswith(family) for name in shown)}
    assert not unshown, unshown
    # And deploy/README.md's table names each.
    undocumented = {family for family in families if f"`{family}" not in RUNBOOK.read_text(encoding="utf-8")}
    assert not undocumented, undocumented


# -- promtool ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if REQUIRE_PROMTOOL:
            pytest.fail("promtool is required (IDP_TEST_REQUIRE_PROMTOOL) but not on PATH")
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    return found


def run_promtool(promtool: str, *args: str | Path) -> str:
    done = subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_checks_the_rules_and_the_config(promtool: str) -> None:
    assert f"SUCCESS: {len(alert_rules())} rules found" in run_promtool(promtool, "check", "rules", ALERTS)
    run_promtool(promtool, "check", "config", PROMETHEUS / "prometheus.yml")
    # scrape-kubernetes.yml is not checked here: Debian's promtool is built without Kubernetes discovery.


def test_promtool_unit_tests_of_the_rules(promtool: str) -> None:
    tests = load_yaml(RULE_TESTS)
    assert [(RULE_TESTS.parent / path).resolve() for path in tests["rule_files"]] == [ALERTS]
    output = run_promtool(promtool, "test", "rules", RULE_TESTS)
    assert "SUCCESS" in output


def test_promtool_unit_tests_fail_when_an_alert_does_not_fire(promtool: str, tmp_path: Path) -> None:
    tests = load_yaml(RULE_TESTS)
    tests["rule_files"] = [str(ALERTS)]
    first = tests["tests"][0]["alert_rule_test"][-1]
    assert first["exp_alerts"], "the last case of the first test expects an alert"
    first["exp_alerts"] = []
    broken = tmp_path / "broken.test.yml"
    broken.write_text(json.dumps(tests))
    done = subprocess.run([promtool, "test", "rules", str(broken)], capture_output=True, text=True, check=False)
    assert done.returncode != 0


def test_no_unused_rule_tests_of_alerts_that_are_gone() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    tested = {case["alertname"] for test in load_yaml(RULE_TESTS)["tests"] for case in test["alert_rule_test"]}
    assert tested <= names
    assert len(tested) >= 2
