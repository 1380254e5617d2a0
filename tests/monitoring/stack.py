"""A real Prometheus, Alertmanager and notification receiver on loopback, for end-to-end tests.

Each is started from the repository's own configuration, changed only where a test must:
loopback addresses and free ports, 1 s scrape/evaluation/grouping so alerts arrive in seconds,
and the notification URLs and secret files pointed at a receiver the test runs.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .support import ALERTMANAGER_DIR, PROMETHEUS_DIR, require_tool

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError:
        return 0, b""


def wait_for(what: str, check: Callable[[], T | None], timeout: float, step: float = 0.25) -> T:
    """Poll ``check`` until it returns a truthy value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


class Receiver:
    """Records every notification POSTed to it (PagerDuty Events v2, Slack webhook)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, json.loads(body)))
                reply = b'{"status":"success","message":"Event processed"}'
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def on(self, path: str) -> list[dict[str, Any]]:
        return [body for got, body in list(self.received) if got == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Daemon:
    """A server process with its output in a log file; stopped by its own handle."""

    def __init__(
        self,
        name: str,
        args: list[str],
        workdir: Path,
        ready_url: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
    ) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env
            )
        try:
            wait_for(
                f"{name} ready", lambda: self._alive() and http_get(ready_url)[0] == 200, timeout
            )
        except AssertionError:
            self.stop()
            raise AssertionError(f"{name} did not start:\n{self.tail()}") from None

    def _alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.tail()}")
        return True

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Alertmanager(Daemon):
    """The repository's Alertmanager config with notifications sent to ``receiver``."""

    def __init__(self, workdir: Path, receiver: Receiver) -> None:
        binary = require_tool("prometheus-alertmanager")
        config = yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text())
        config["templates"] = [str(ALERTMANAGER_DIR / "templates" / "*.tmpl")]
        route = config["route"]
        route.update(group_wait="0s", group_interval="1s")
        for child in route["routes"]:
            child["group_wait"] = "0s"
        secrets = {"routing_key_file": "e2e-routing-key", "api_url_file": f"{receiver.url}/slack"}
        for spec in config["receivers"]:
            for integration in spec.get("pagerduty_configs", []) + spec.get("slack_configs", []):
                for key, value in secrets.items():
                    if key in integration:
                        secret = workdir / Path(integration[key]).name
                        secret.write_text(value)
                        integration[key] = str(secret)
            for integration in spec.get("pagerduty_configs", []):
                integration["url"] = f"{receiver.url}/v2/enqueue"
        path = workdir / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [
            binary,
            f"--config.file={path}",
            f"--storage.path={workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
        ]
        super().__init__("alertmanager", args, workdir, f"{self.url}/-/ready")


class Prometheus(Daemon):
    """The repository's prometheus.yml and rules, scraping ``target`` every second."""

    def __init__(self, workdir: Path, target: str, alertmanager: Alertmanager) -> None:
        binary = require_tool("prometheus")
        config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
        config["rule_files"] = [str(PROMETHEUS_DIR / f) for f in config["rule_files"]]
        config["alerting"]["alertmanagers"][0]["static_configs"] = [
            {"targets": [f"127.0.0.1:{alertmanager.port}"]}
        ]
        jobs = [j for j in config["scrape_configs"] if j["job_name"] == "stream-detector"]
        jobs[0]["static_configs"] = [{"targets": [target]}]
        config["scrape_configs"] = jobs
        path = workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [
            binary,
            f"--config.file={path}",
            f"--storage.tsdb.path={workdir / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
        ]
        super().__init__("prometheus", args, workdir, f"{self.url}/-/ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; fails on a PromQL error, returns the result vector."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = http_get(url)
        reply = json.loads(body or b"{}")
        assert status == 200 and reply.get("status") == "success", (expr, status, body[:500])
        result: list[dict[str, Any]] = reply["data"]["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        status, body = http_get(f"{self.url}/api/v1/alerts")
        assert status == 200
        alerts: list[dict[str, Any]] = json.loads(body)["data"]["alerts"]
        return alerts
