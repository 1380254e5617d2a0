"""A small HTTP server for Prometheus and the orchestrator: /metrics, /healthz and /readyz.

Why a separate stdlib server in a thread rather than Faust's web server: it must answer while
the event loop is busy recovering state (readiness says "not yet", liveness still says "alive"),
the worker and ``replay`` share it, and it binds where it is told (loopback by default) instead
of Faust's 0.0.0.0.

- ``/metrics``: the detector's registry (`stream_detector.metrics.REGISTRY`); ``?name[]=``
  restricts it to the named samples (e.g. ``stream_detector_events_total``).
- ``/healthz`` (liveness): 200 while the process serves HTTP and, when the driver reports
  heartbeats, the last one is recent; 503 means "restart me".
- ``/readyz`` (readiness): 200 only after `set_ready(True)`, i.e. once state is recovered from
  the changelog; 503 before and after `set_ready(False)` (rebalance, shutdown).
"""

from __future__ import annotations

import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from prometheus_client import generate_latest

from stream_detector import metrics

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9477
#: Seconds without a heartbeat after which liveness fails (only once heartbeats started).
DEFAULT_LIVENESS_TIMEOUT_S = 60.0
#: What `generate_latest` writes. Named explicitly: newer clients advertise version 1.0.0, which
#: Prometheus releases before 3.0 (Debian 12 ships 2.42) do not know.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _State:
    """Readiness and heartbeat, shared between the driver and the HTTP thread."""

    def __init__(self) -> None:
        self.ready = False
        self.last_heartbeat: float | None = None
        self.liveness_timeout_s = DEFAULT_LIVENESS_TIMEOUT_S


_state = _State()


def set_ready(ready: bool) -> None:
    """Declare the worker ready (state recovered, processing) or not; mirrored in a gauge."""
    _state.ready = ready
    metrics.WORKER_READY.set(1 if ready else 0)


def is_ready() -> bool:
    """Whether /readyz answers 200."""
    return _state.ready


def heartbeat() -> None:
    """Tell liveness that the driver's loop is making progress (call it from the loop)."""
    _state.last_heartbeat = time.monotonic()


def is_alive() -> bool:
    """Whether /healthz answers 200: no heartbeat yet, or a recent one."""
    last = _state.last_heartbeat
    return last is None or time.monotonic() - last <= _state.liveness_timeout_s


class _Handler(BaseHTTPRequestHandler):
    server_version = "stream-detector"

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/metrics":
            # `?name[]=a&name[]=b`: only those samples, as Prometheus clients allow (a cheap
            # poll for a dashboard or a benchmark, where the whole registry is not needed).
            names = parse_qs(query).get("name[]")
            registry = metrics.REGISTRY.restricted_registry(names) if names else metrics.REGISTRY
            self._reply(HTTPStatus.OK, generate_latest(registry), METRICS_CONTENT_TYPE)
        elif path == "/healthz":
            self._probe(is_alive(), b"ok\n", b"event loop stalled\n")
        elif path == "/readyz":
            self._probe(is_ready(), b"ready\n", b"not ready: state not recovered\n")
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"not found\n")

    def _probe(self, ok: bool, yes: bytes, no: bytes) -> None:
        if ok:
            self._reply(HTTPStatus.OK, yes)
        else:
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, no)

    def _reply(
        self, status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8"
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Silence per-request access logs (scrapes every few seconds would flood stderr)."""


class HealthServer:
    """The HTTP endpoint in a daemon thread; `port` is the bound port (useful with port 0)."""

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        liveness_timeout_s: float = DEFAULT_LIVENESS_TIMEOUT_S,
    ) -> None:
        _state.liveness_timeout_s = liveness_timeout_s
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="stream-detector-http", daemon=True
        )

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> HealthServer:
        """Start serving and mark the worker up."""
        self._thread.start()
        metrics.WORKER_UP.set(1)
        log.info("metrics and health endpoint on http://%s:%d", self.host, self.port)
        return self

    def stop(self) -> None:
        """Mark the worker down and not ready, then stop serving (idempotent)."""
        metrics.WORKER_UP.set(0)
        set_ready(False)
        if not self._thread.is_alive():
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> HealthServer:
    """Start the endpoint on ``host:port`` (port 0 picks a free port) and return it."""
    return HealthServer(host, port).start()
