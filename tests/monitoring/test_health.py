"""The HTTP endpoint: /metrics serves the detector's registry, probes follow the driver's state."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from stream_detector import health, metrics


def get(server: health.HealthServer, path: str) -> tuple[int, str, str]:
    url = f"http://{server.host}:{server.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


@pytest.fixture
def server() -> Iterator[health.HealthServer]:
    srv = health.serve(port=0)
    try:
        yield srv
    finally:
        srv.stop()


def test_binds_loopback_by_default_and_serves_metrics(server: health.HealthServer) -> None:
    assert server.host == "127.0.0.1"
    status, ctype, body = get(server, "/metrics")
    assert status == 200
    assert ctype.startswith("text/plain; version=0.0.4")
    assert "stream_detector_events_total" in body
    assert "stream_detector_worker_up 1.0" in body


def test_readyz_only_after_set_ready(server: health.HealthServer) -> None:
    assert get(server, "/readyz")[0] == 503
    assert get(server, "/healthz")[0] == 200
    health.set_ready(True)
    assert get(server, "/readyz")[0] == 200
    assert metrics.REGISTRY.get_sample_value("stream_detector_worker_ready") == 1
    health.set_ready(False)
    assert get(server, "/readyz")[0] == 503
    assert metrics.REGISTRY.get_sample_value("stream_detector_worker_ready") == 0


def test_liveness_fails_when_heartbeats_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    srv = health.HealthServer(port=0, liveness_timeout_s=0.0).start()
    try:
        health.heartbeat()
        clock = health.time.monotonic()
        monkeypatch.setattr(health.time, "monotonic", lambda: clock + 1.0)
        assert get(srv, "/healthz")[0] == 503
        monkeypatch.undo()
        health.heartbeat()
        health._state.liveness_timeout_s = 60.0
        assert get(srv, "/healthz")[0] == 200
    finally:
        srv.stop()
        health._state.last_heartbeat = None


def test_stop_marks_worker_down_and_unknown_paths_404(server: health.HealthServer) -> None:
    assert get(server, "/nope")[0] == 404
    server.stop()
    assert metrics.REGISTRY.get_sample_value("stream_detector_worker_up") == 0


def test_metrics_can_be_restricted_to_named_samples() -> None:
    server = health.serve("127.0.0.1", 0)
    try:
        metrics.observe_batch(3, 0.001)
        url = f"http://127.0.0.1:{server.port}/metrics?name[]=stream_detector_events_total"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
        assert "stream_detector_events_total " in body
        assert "stream_detector_alerts_total" not in body and "process_" not in body
    finally:
        server.stop()
