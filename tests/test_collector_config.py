"""``collector-config/`` without Docker: the Collector config is wired, and the compose file matches it.

No container runs here, so these checks stand in for ``docker compose up``: the config parses, the traces
pipeline goes receiver -> processors -> exporter with every component defined, the ports the receiver
listens on are the ports compose publishes, and the file compose mounts is the file the Collector reads.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from tests.export.fault_apps import largest_session_span

CONFIG_DIR = Path(__file__).resolve().parents[1] / "collector-config"
COLLECTOR_CONFIG = CONFIG_DIR / "otel-collector.yaml"
COMPOSE_FILE = CONFIG_DIR / "compose.yaml"
COLLECTOR_SERVICE = "otel-collector"
JAEGER_SERVICE = "jaeger"
GRPC_REQUEST_LIMIT = 4 * 1024 * 1024  # Jaeger's OTLP receiver keeps the Collector's 4 MiB default
PAYLOAD_KEY = "websocket.message.payload"


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path.name} is not a mapping"
    return document


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return load(COLLECTOR_CONFIG)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE_FILE)


@pytest.fixture(scope="module")
def traces(config: dict[str, Any]) -> dict[str, list[str]]:
    pipeline = config["service"]["pipelines"]["traces"]
    assert isinstance(pipeline, dict)
    return pipeline


def component_type(component_id: str) -> str:
    """``otlp_grpc/jaeger`` -> ``otlp_grpc``: the part before the slash names the component type."""
    return component_id.split("/", 1)[0]


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


@pytest.mark.parametrize("section", ["receivers", "processors", "exporters"])
def test_every_pipeline_component_is_defined(
    config: dict[str, Any], traces: dict[str, list[str]], section: str
) -> None:
    used = traces[section]
    assert used, f"the traces pipeline has no {section}"
    assert len(set(used)) == len(used)
    defined = config[section]
    assert set(used) <= set(defined), f"{section} used but not defined: {set(used) - set(defined)}"


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
    config: dict[str, Any], traces: dict[str, list[str]], compose: dict[str, Any]
) -> None:
    [otlp] = [e for e in traces["exporters"] if component_type(e) in ("otlp", "otlp_grpc")]
    exporter = config["exporters"][otlp]
    host, port = exporter["endpoint"].rsplit(":", 1)
    assert host == JAEGER_SERVICE
    assert host in compose["services"]
    assert port == "4317"  # Jaeger v2's own OTLP gRPC receiver
    assert exporter["tls"]["insecure"] is True


# --- the compose file ---------------------------------------------------------------------------------------


def test_compose_publishes_the_receiver_ports_and_the_jaeger_ui(
    config: dict[str, Any], compose: dict[str, Any]
) -> None:
    services = compose["services"]
    protocols = config["receivers"]["otlp"]["protocols"]
    receiver_ports = {endpoint_port(protocols[name]["endpoint"]) for name in ("grpc", "http")}
    collector_ports = published(services[COLLECTOR_SERVICE])
    assert set(collector_ports) == receiver_ports
    assert all(host == container for container, host in collector_ports.items())
    jaeger_ports = published(services[JAEGER_SERVICE])
    assert jaeger_ports == {16686: 16686}  # its OTLP ports stay internal: no clash with the Collector's
    assert services[COLLECTOR_SERVICE].get("depends_on") in ([JAEGER_SERVICE], {JAEGER_SERVICE: {}})


def test_compose_mounts_the_config_where_the_collector_reads_it(compose: dict[str, Any]) -> None:
    collector = compose["services"][COLLECTOR_SERVICE]
    command = collector["command"]
    arguments = command if isinstance(command, list) else str(command).split()
    [config_path] = [m.group(1) for a in arguments if (m := re.fullmatch(r"--config=(\S+)", a))]
    mounts = {}
    for volume in collector["volumes"]:
        source, target, *_ = str(volume).split(":")
        mounts[target] = source
    assert config_path in mounts, f"{config_path} is not mounted: {mounts}"
    assert (COMPOSE_FILE.parent / mounts[config_path]).resolve() == COLLECTOR_CONFIG
    assert PurePosixPath(config_path).is_absolute()


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    images = {name: service["image"] for name, service in compose["services"].items()}
    assert images[JAEGER_SERVICE].startswith("jaegertracing/jaeger:2.")
    assert images[COLLECTOR_SERVICE].startswith("otel/opentelemetry-collector-contrib:")
    for image in images.values():
        tag = image.rsplit(":", 1)[1]
        assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{image} is not pinned to a release"
