"""``collector-config/`` without Docker: the Collector, Jaeger and Prometheus configs are wired; compose matches them.

No container runs here, so these checks stand in for ``docker compose up``: the configs parse; the traces pipeline
goes receiver -> processors -> exporters, the app's metrics go receiver -> prometheus exporter, and the spanmetrics
connector joins the traces pipeline to a metrics pipeline, with every component defined; Prometheus scrapes the
exporter, Jaeger's Monitor tab queries Prometheus by its compose name; the ports the services listen on are the ports
compose publishes, and the files compose mounts exist and are the files the services read.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from litestar_ws_otel import semconv
from litestar_ws_otel.metrics import DURATION_BUCKETS
from tests.export.fault_apps import largest_session_span

CONFIG_DIR = Path(__file__).resolve().parents[1] / "collector-config"
COLLECTOR_CONFIG = CONFIG_DIR / "otel-collector.yaml"
JAEGER_CONFIG = CONFIG_DIR / "jaeger.yaml"
PROMETHEUS_CONFIG = CONFIG_DIR / "prometheus.yaml"
COMPOSE_FILE = CONFIG_DIR / "compose.yaml"
README = CONFIG_DIR / "README.md"
COLLECTOR_SERVICE = "otel-collector"
JAEGER_SERVICE = "jaeger"
PROMETHEUS_SERVICE = "prometheus"
PROMETHEUS_PORT = 9090
GRPC_REQUEST_LIMIT = 4 * 1024 * 1024  # Jaeger's OTLP receiver keeps the Collector's 4 MiB default
PAYLOAD_KEY = "websocket.message.payload"
SPANMETRICS = "spanmetrics"
# The spanmetrics connector's defaults, and what Jaeger's Prometheus reader assumes unless told otherwise.
SPANMETRICS_DEFAULT_NAMESPACE = "traces.span.metrics"
SPANMETRICS_DEFAULT_UNIT = "ms"
JAEGER_DEFAULT_NAMESPACE = "traces_span_metrics"
JAEGER_DEFAULT_LATENCY_UNIT = "ms"
# The app's instruments as the Prometheus exporter names them: dots to underscores, the unit appended unless
# the name holds it already ({annotations} are dropped), and _total on monotonic counters.
PROMETHEUS_NAMES = {
    semconv.WEBSOCKET_SERVER_ACTIVE_CONNECTIONS: "websocket_server_active_connections",  # {connection}, gauge
    semconv.WEBSOCKET_SERVER_CONNECTION_DURATION: "websocket_server_connection_duration_seconds_bucket",  # s
    semconv.WEBSOCKET_SERVER_MESSAGES: "websocket_server_messages_total",  # {message}, counter
    semconv.WEBSOCKET_SERVER_BYTES: "websocket_server_bytes_total",  # By, counter; "bytes" is in the name already
}


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path.name} is not a mapping"
    return document


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return load(COLLECTOR_CONFIG)


@pytest.fixture(scope="module")
def jaeger_config() -> dict[str, Any]:
    return load(JAEGER_CONFIG)


@pytest.fixture(scope="module")
def prometheus_config() -> dict[str, Any]:
    return load(PROMETHEUS_CONFIG)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE_FILE)


@pytest.fixture(scope="module")
def pipelines(config: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    found = config["service"]["pipelines"]
    assert isinstance(found, dict)
    return found


@pytest.fixture(scope="module")
def traces(pipelines: dict[str, dict[str, list[str]]]) -> dict[str, list[str]]:
    pipeline = pipelines["traces"]
    assert isinstance(pipeline, dict)
    return pipeline


@pytest.fixture(scope="module")
def metrics(pipelines: dict[str, dict[str, list[str]]]) -> dict[str, list[str]]:
    """The app's own metrics: the pipeline named ``metrics``, fed by the OTLP receiver."""
    pipeline = pipelines["metrics"]
    assert isinstance(pipeline, dict)
    return pipeline


def component_type(component_id: str) -> str:
    """``otlp_grpc/jaeger`` -> ``otlp_grpc``: the part before the slash names the component type."""
    return component_id.split("/", 1)[0]


def pipeline_type(pipeline_id: str) -> str:
    """``metrics/spanmetrics`` -> ``metrics``: pipeline ids are named like components."""
    return component_type(pipeline_id)


def one_of_type(ids: list[str], wanted: str) -> str:
    [found] = [i for i in ids if component_type(i) == wanted]
    return found


def go_duration(text: str) -> float:
    """A Go duration (``100ms``, ``2500ms``, ``1m``, ``1h30m``) in seconds, as the Collector reads bucket bounds."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", str(text))
    assert "".join(n + u for n, u in parts) == str(text), f"not a Go duration: {text!r}"
    assert parts, f"not a Go duration: {text!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Compose short-syntax ``volumes`` as {container path: host path}."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = str(volume).split(":")
        found[target] = source
    return found


def config_argument(service: dict[str, Any], flag: str) -> str:
    """The value of ``flag=VALUE`` in a service's ``command`` (list or string form)."""
    command = service["command"]
    arguments = command if isinstance(command, list) else str(command).split()
    [value] = [m.group(1) for a in arguments if (m := re.fullmatch(rf"{re.escape(flag)}=(\S+)", a))]
    return value


def assert_reads_mounted_file(service: dict[str, Any], flag: str, expected: Path) -> None:
    """The service's config flag names a path that compose mounts, from ``expected`` in this directory."""
    config_path = config_argument(service, flag)
    mounted = mounts(service)
    assert config_path in mounted, f"{config_path} is not mounted: {mounted}"
    assert (COMPOSE_FILE.parent / mounted[config_path]).resolve() == expected
    assert PurePosixPath(config_path).is_absolute()


def published(service: dict[str, Any]) -> dict[int, int]:
    """Compose ``ports`` as {container port: host port}; short syntax ``[ip:]host:container[/tcp]``."""
    ports: dict[int, int] = {}
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports[int(entry["target"])] = int(entry["published"])
            continue
        parts = str(entry).split("/")[0].split(":")
        assert len(parts) >= 2, f"port {entry!r} is not published on the host"
        ports[int(parts[-1])] = int(parts[-2])
    return ports


def endpoint_port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


# --- the Collector config ---------------------------------------------------------------------------------


def assert_pipelines_are_defined(config: dict[str, Any], section: str) -> None:
    """Every component a pipeline uses under ``section`` is defined; connectors count as receivers and exporters."""
    defined = set(config.get(section) or {})
    if section in ("receivers", "exporters"):
        defined |= set(config.get("connectors") or {})
    for name, pipeline in config["service"]["pipelines"].items():
        used = pipeline.get(section) or []
        if section != "processors":
            assert used, f"the {name} pipeline has no {section}"
        assert len(set(used)) == len(used), f"the {name} pipeline repeats one of its {section}"
        assert set(used) <= defined, f"{name}: {section} used but not defined: {set(used) - defined}"


@pytest.mark.parametrize("section", ["receivers", "processors", "exporters"])
def test_every_pipeline_component_is_defined(
    config: dict[str, Any], traces: dict[str, list[str]], section: str
) -> None:
    used = traces[section]
    assert used, f"the traces pipeline has no {section}"
    assert len(set(used)) == len(used)
    defined = set(config[section]) | set(config.get("connectors") or {})
    assert set(used) <= defined, f"{section} used but not defined: {set(used) - defined}"
    assert_pipelines_are_defined(config, section)


def test_every_connector_joins_two_pipelines(config: dict[str, Any], pipelines: dict[str, Any]) -> None:
    """A connector is an exporter of one pipeline and a receiver of another, or the Collector refuses to start."""
    for connector in config.get("connectors") or {}:
        assert any(connector in p.get("exporters", []) for p in pipelines.values()), f"nothing feeds {connector}"
        assert any(connector in p.get("receivers", []) for p in pipelines.values()), f"{connector} feeds nothing"


def test_otlp_receiver_listens_on_the_standard_ports_on_all_interfaces(
    config: dict[str, Any], traces: dict[str, list[str]]
) -> None:
    assert traces["receivers"] == ["otlp"]
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    # The SDK's default batch of maximum-size session spans (about 60 MiB) must not be refused.
    assert protocols["grpc"]["max_recv_msg_size_mib"] >= 64
    assert protocols["http"]["max_request_body_size"] >= 64 * 1024 * 1024


def test_payload_previews_are_dropped_before_the_batch(config: dict[str, Any], traces: dict[str, list[str]]) -> None:
    processors = traces["processors"]
    [dropper] = [p for p in processors if component_type(p) == "transform"]
    statements = config["processors"][dropper]["trace_statements"]
    # Payloads are span event attributes: only the spanevent context reaches them.
    assert {"context": "spanevent", "statements": [f'delete_key(attributes, "{PAYLOAD_KEY}")']} in statements
    assert component_type(processors[-1]) == "batch", "the batch processor comes last"
    assert processors.index(dropper) < processors.index(processors[-1])


def test_batches_to_jaeger_stay_under_its_request_limit(config: dict[str, Any], traces: dict[str, list[str]]) -> None:
    """Even with payloads kept, the largest request the batch processor sends fits Jaeger's 4 MiB."""
    [batch] = [p for p in traces["processors"] if component_type(p) == "batch"]
    settings = config["processors"][batch]
    max_spans = settings["send_batch_max_size"]
    assert 0 < settings["send_batch_size"] <= max_spans
    span = largest_session_span()
    request = encode_spans([span] * max_spans).ByteSize()
    assert request < GRPC_REQUEST_LIMIT, f"{max_spans} spans of {encode_spans([span]).ByteSize()} bytes: {request}"


def test_exporter_sends_otlp_to_jaeger_over_the_compose_network(
    config: dict[str, Any], traces: dict[str, list[str]], compose: dict[str, Any], jaeger_config: dict[str, Any]
) -> None:
    [otlp] = [e for e in traces["exporters"] if component_type(e) in ("otlp", "otlp_grpc")]
    exporter = config["exporters"][otlp]
    host, port = exporter["endpoint"].rsplit(":", 1)
    assert host == JAEGER_SERVICE
    assert host in compose["services"]
    assert port == "4317"  # Jaeger v2's own OTLP gRPC receiver
    assert exporter["tls"]["insecure"] is True
    # ... which Jaeger's config opens on every interface of its container, with gRPC's default request limit.
    grpc = jaeger_config["receivers"]["otlp"]["protocols"]["grpc"]
    assert grpc["endpoint"] == f"0.0.0.0:{port}"
    assert grpc.get("max_recv_msg_size_mib", 4) * 1024 * 1024 <= GRPC_REQUEST_LIMIT


def test_app_metrics_go_from_the_otlp_receiver_to_the_prometheus_exporter(
    config: dict[str, Any], metrics: dict[str, list[str]]
) -> None:
    """The app sends its metrics beside its spans: same receiver, same ports, then Prometheus' exporter."""
    assert metrics["receivers"] == ["otlp"]
    prometheus = one_of_type(metrics["exporters"], "prometheus")
    assert config["exporters"][prometheus]["endpoint"] == "0.0.0.0:8889"
    # The default name translation (underscores, unit and _total suffixes) is what the README's queries use.
    exporter = config["exporters"][prometheus]
    assert exporter.get("translation_strategy", "UnderscoreEscapingWithSuffixes") == "UnderscoreEscapingWithSuffixes"
    assert exporter.get("add_metric_suffixes", True) is True
    assert "namespace" not in exporter


def test_spanmetrics_connector_joins_the_traces_pipeline_to_the_prometheus_exporter(
    config: dict[str, Any], pipelines: dict[str, dict[str, list[str]]], traces: dict[str, list[str]]
) -> None:
    assert SPANMETRICS in config["connectors"]
    assert SPANMETRICS in traces["exporters"], "the traces pipeline does not feed the spanmetrics connector"
    [name] = [n for n, p in pipelines.items() if SPANMETRICS in p.get("receivers", [])]
    assert pipeline_type(name) == "metrics"
    assert pipelines[name]["receivers"] == [SPANMETRICS]
    prometheus = one_of_type(pipelines[name]["exporters"], "prometheus")
    assert prometheus in pipelines["metrics"]["exporters"], "span metrics and app metrics share one exporter"


def test_span_metrics_histogram_covers_whole_sessions(config: dict[str, Any]) -> None:
    """A session span lasts as long as its connection: buckets must reach the app's largest, a day."""
    histogram = config["connectors"][SPANMETRICS]["histogram"]
    buckets = [go_duration(b) for b in histogram["explicit"]["buckets"]]
    assert buckets == sorted(buckets)
    assert len(set(buckets)) == len(buckets)
    assert buckets[-1] >= max(DURATION_BUCKETS)
    assert buckets[0] <= min(DURATION_BUCKETS)


def test_message_spans_are_left_out_of_span_metrics_only(
    config: dict[str, Any], pipelines: dict[str, dict[str, list[str]]]
) -> None:
    """``WS /chat/{room} messages`` pieces of an open session are not requests: no calls in the Monitor tab."""
    [name] = [n for n, p in pipelines.items() if SPANMETRICS in p.get("receivers", [])]
    filters = [p for p in pipelines[name].get("processors", []) if component_type(p) == "filter"]
    [dropper] = filters
    assert all(dropper not in p.get("processors", []) for n, p in pipelines.items() if n != name)
    [condition] = config["processors"][dropper]["metrics"]["datapoint"]
    match = re.fullmatch(r'IsMatch\(attributes\["span\.name"\], "(.+)"\)', condition)
    assert match, condition
    pattern = re.compile(match.group(1))  # RE2 and Python agree on this pattern's syntax
    for message_span in ("WS /chat/{room} messages", "WS messages", "WS /messages messages"):
        assert pattern.search(message_span), message_span
    for session_span in ("WS /chat/{room}", "WS", "WS /messages", "WS /chat/{room} messages/x", "GET /messages"):
        assert not pattern.search(session_span), session_span


# --- Jaeger's config ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("section", ["receivers", "processors", "exporters"])
def test_every_jaeger_pipeline_component_is_defined(jaeger_config: dict[str, Any], section: str) -> None:
    assert_pipelines_are_defined(jaeger_config, section)
    extensions = jaeger_config["service"]["extensions"]
    assert set(extensions) <= set(jaeger_config["extensions"])
    assert {"jaeger_storage", "jaeger_query"} <= set(extensions)


def test_jaeger_stores_the_traces_it_shows(jaeger_config: dict[str, Any]) -> None:
    storage = jaeger_config["extensions"]["jaeger_query"]["storage"]
    backends = jaeger_config["extensions"]["jaeger_storage"]["backends"]
    assert storage["traces"] in backends
    [exporter] = jaeger_config["service"]["pipelines"]["traces"]["exporters"]
    assert jaeger_config["exporters"][exporter]["trace_storage"] == storage["traces"]


def test_jaeger_monitor_tab_queries_prometheus_by_its_compose_name(
    jaeger_config: dict[str, Any], compose: dict[str, Any]
) -> None:
    storage = jaeger_config["extensions"]["jaeger_query"]["storage"]
    backend = jaeger_config["extensions"]["jaeger_storage"]["metric_backends"][storage["metrics"]]["prometheus"]
    assert backend["endpoint"] == f"http://{PROMETHEUS_SERVICE}:{PROMETHEUS_PORT}"
    assert PROMETHEUS_SERVICE in compose["services"]
    assert PROMETHEUS_PORT in published(compose["services"][PROMETHEUS_SERVICE])


def test_jaeger_queries_the_span_metric_names_the_collector_exports(
    config: dict[str, Any], jaeger_config: dict[str, Any]
) -> None:
    """traces_span_metrics_calls_total and ..._duration_milliseconds_bucket, on both sides."""
    connector = config["connectors"][SPANMETRICS]
    storage = jaeger_config["extensions"]["jaeger_query"]["storage"]
    backend = jaeger_config["extensions"]["jaeger_storage"]["metric_backends"][storage["metrics"]]["prometheus"]
    namespace = connector.get("namespace", SPANMETRICS_DEFAULT_NAMESPACE)
    assert backend.get("metric_namespace", JAEGER_DEFAULT_NAMESPACE) == namespace.replace(".", "_")
    unit = connector.get("histogram", {}).get("unit", SPANMETRICS_DEFAULT_UNIT)
    assert backend.get("latency_unit", JAEGER_DEFAULT_LATENCY_UNIT) == unit
    # The Collector's prometheus exporter appends _total and the unit; Jaeger must expect them.
    assert backend["normalize_calls"] is True
    assert backend["normalize_duration"] is True


# --- Prometheus' config -------------------------------------------------------------------------------------


def test_prometheus_scrapes_the_collectors_exporter(
    config: dict[str, Any], metrics: dict[str, list[str]], prometheus_config: dict[str, Any], compose: dict[str, Any]
) -> None:
    port = endpoint_port(config["exporters"][one_of_type(metrics["exporters"], "prometheus")]["endpoint"])
    targets = [
        target
        for job in prometheus_config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    assert f"{COLLECTOR_SERVICE}:{port}" in targets
    assert COLLECTOR_SERVICE in compose["services"]
    for target in targets:
        assert target.rsplit(":", 1)[0] in compose["services"], f"{target} is not a compose service"


# --- the compose file ---------------------------------------------------------------------------------------


def test_compose_publishes_the_receiver_ports_and_the_jaeger_ui(
    config: dict[str, Any], compose: dict[str, Any], metrics: dict[str, list[str]]
) -> None:
    services = compose["services"]
    protocols = config["receivers"]["otlp"]["protocols"]
    receiver_ports = {endpoint_port(protocols[name]["endpoint"]) for name in ("grpc", "http")}
    exporter_port = endpoint_port(config["exporters"][one_of_type(metrics["exporters"], "prometheus")]["endpoint"])
    collector_ports = published(services[COLLECTOR_SERVICE])
    assert set(collector_ports) == receiver_ports | {exporter_port}
    assert all(host == container for container, host in collector_ports.items())
    jaeger_ports = published(services[JAEGER_SERVICE])
    assert jaeger_ports == {16686: 16686}  # its OTLP ports stay internal: no clash with the Collector's
    assert services[COLLECTOR_SERVICE].get("depends_on") in ([JAEGER_SERVICE], {JAEGER_SERVICE: {}})


def test_compose_publishes_the_prometheus_ui(compose: dict[str, Any]) -> None:
    assert published(compose["services"][PROMETHEUS_SERVICE]) == {PROMETHEUS_PORT: PROMETHEUS_PORT}


def test_compose_mounts_the_config_where_the_collector_reads_it(compose: dict[str, Any]) -> None:
    collector = compose["services"][COLLECTOR_SERVICE]
    command = collector["command"]
    arguments = command if isinstance(command, list) else str(command).split()
    [config_path] = [m.group(1) for a in arguments if (m := re.fullmatch(r"--config=(\S+)", a))]
    mounted = mounts(collector)
    assert config_path in mounted, f"{config_path} is not mounted: {mounted}"
    assert (COMPOSE_FILE.parent / mounted[config_path]).resolve() == COLLECTOR_CONFIG
    assert PurePosixPath(config_path).is_absolute()


@pytest.mark.parametrize(
    ("service", "flag", "expected"),
    [(JAEGER_SERVICE, "--config", JAEGER_CONFIG), (PROMETHEUS_SERVICE, "--config.file", PROMETHEUS_CONFIG)],
)
def test_compose_mounts_the_configs_where_jaeger_and_prometheus_read_them(
    compose: dict[str, Any], service: str, flag: str, expected: Path
) -> None:
    assert_reads_mounted_file(compose["services"][service], flag, expected)


def test_every_file_compose_mounts_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for target, source in mounts(service).items():
            assert source.startswith("."), f"{name} mounts {source}: not a file of this directory"
            assert (COMPOSE_FILE.parent / source).is_file(), f"{name} mounts {source} at {target}: no such file"


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    images = {name: service["image"] for name, service in compose["services"].items()}
    assert images[JAEGER_SERVICE].startswith("jaegertracing/jaeger:2.")
    assert images[COLLECTOR_SERVICE].startswith("otel/opentelemetry-collector-contrib:")
    assert images[PROMETHEUS_SERVICE].startswith("prom/prometheus:v3.")
    for image in images.values():
        tag = image.rsplit(":", 1)[1]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{image} is not pinned to a release"


# --- the README ---------------------------------------------------------------------------------------------


def test_readme_queries_the_names_prometheus_shows() -> None:
    """The PromQL in the README uses the exporter's translation of the app's instrument and attribute names."""
    text = README.read_text(encoding="utf-8")
    for name, prometheus_name in PROMETHEUS_NAMES.items():
        assert prometheus_name.startswith(name.replace(".", "_")), f"{name} was renamed: update PROMETHEUS_NAMES"
        assert prometheus_name in text, f"the README does not show {prometheus_name}"
    for attribute in ("http.route", semconv.WEBSOCKET_MESSAGE_DIRECTION):
        label = attribute.replace(".", "_")
        assert re.search(rf"by \([^)]*\b{label}\b", text), f"the README groups by no {label}"
    for url in ("http://localhost:9090", "http://localhost:8889/metrics", "http://localhost:16686"):
        assert url in text, f"the README does not give {url}"
