"""Case 8: a herd of simultaneous token fetches over TLS (a wide stage starting on a big cluster)."""

from __future__ import annotations

import json
import os
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

from lakebase_spark import BrokerService, TokenBroker

from ..context import Context
from ..env import ENDPOINT, say
from ..herd_client import PROCESSES, HerdResult, herd
from ..measure import stat
from ..results import CaseResult, Comparison, Goal, Table

FULL_SIZES = (500, 1_000, 2_000)
QUICK_SIZES = (20,)  # --quick (the test suite's smoke run): the path, not the figures
RUNS = 3  # of the largest herd, each side


class _BeforeServer(ThreadingHTTPServer):
    """The broker's transport before it was built for herds: Python's defaults (listen backlog 5, a
    thread per connection) with the TLS handshake on that thread."""

    daemon_threads = True
    service: BrokerService
    ssl_context: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is not None:
            request.settimeout(10.0)
            request = self.ssl_context.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # dropped connections are what this baseline measures; the clients count them


class _BeforeHandler(BaseHTTPRequestHandler):
    """``http.server`` parsing, headers and body written separately (Nagle on), keep-alive."""

    server: _BeforeServer
    protocol_version = "HTTP/1.1"
    timeout = 60

    def do_GET(self) -> None:
        status, body = self.server.service.answer(self.path, self.headers.get("Authorization"))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _run(ctx: Context, fetches: int, *, before: bool) -> tuple[HerdResult, float]:
    with BrokerService(TokenBroker(ctx.env.workspace), tls=True) as service:
        if before:
            service.stop()
            service._server_class = _BeforeServer  # type: ignore[assignment]
            service._handler_class = _BeforeHandler
            service.broker = TokenBroker(ctx.env.workspace)
            service.start()
        path = f"/v1/token?endpoint={quote(ENDPOINT, safe='')}"
        auth = f"Bearer {service.secret.reveal()}"
        warm = herd(service.host, service.port, path, auth, 4)  # the token is minted before the herd
        assert warm.failures == 0, warm.errors
        cpu0 = os.times()
        result = herd(service.host, service.port, path, auth, fetches)
        cpu1 = os.times()
        server_cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        assert service.broker.stats.mints == 1
    return result, server_cpu / fetches * 1000


def run(ctx: Context) -> CaseResult:
    sizes, runs_of_largest = (QUICK_SIZES, 1) if ctx.cfg.quick else (FULL_SIZES, RUNS)
    largest = sizes[-1]
    rows: list[list[Any]] = []
    ours_p99: list[float] = []
    base_p99: list[float] = []
    ours_failures: list[float] = []
    for fetches in sizes:
        for _ in range(runs_of_largest if fetches == largest else 1):
            result, cpu_ms = _run(ctx, fetches, before=False)
            say(f"  ours, {fetches}: {result.failures} failed, p99 {result.percentile(0.99):.2f} s")
            rows.append(_row("lakebase-spark broker", fetches, result, cpu_ms))
            if fetches == largest:
                ours_p99.append(result.percentile(0.99))
                ours_failures.append(result.failures)
    for _ in range(runs_of_largest):
        result, cpu_ms = _run(ctx, largest, before=True)
        say(f"  before, {largest}: {result.failures} failed, p99 {result.percentile(0.99):.2f} s")
        rows.append(_row("before (http.server)", largest, result, cpu_ms))
        base_p99.append(result.percentile(0.99))
    return CaseResult(
        key="herd",
        title="A herd of simultaneous token fetches (TLS, loopback)",
        method=[
            "A `BrokerService(TokenBroker(...), tls=True)` on loopback, its token minted first; "
            f"then N fetches released at one instant from {PROCESSES} spawned client processes "
            "(one thread per fetch, each a new TLS connection and one `GET /v1/token`, as each "
            "executor JVM makes it). N = "
            + ", ".join(f"{n:,}" for n in sizes)
            + f"; the largest {runs_of_largest} times. Latency is from the release to the answer's last "
            "byte; a failure is any exception or non-200 answer. Clients and server share this "
            "machine's 2 cores, so the client side's TLS work is in every figure.",
            "**Baseline**: the same broker behind its transport before this work: `http.server` with "
            "Python's defaults (listen backlog 5, a thread per connection, headers and body written "
            "separately with Nagle on, keep-alive).",
        ],
        comparisons=[
            Comparison(
                label=f"p99 latency of {largest:,} simultaneous fetches",
                baseline_label="before (http.server)",
                baseline=stat(base_p99, "s"),
                ours_label="lakebase-spark broker",
                ours=stat(ours_p99, "s"),
                ratio=stat([b / o for b, o in zip(base_p99, ours_p99, strict=True)], "x"),
                ratio_meaning="baseline p99 ÷ our p99",
                goal=Goal("<=", 2.0),
                goal_on="ours",
            ),
            Comparison(
                label=f"failed fetches of {largest:,}",
                baseline_label="before (http.server)",
                baseline=stat([float(r[2]) for r in rows if r[0] == "before (http.server)"], "fetches"),
                ours_label="lakebase-spark broker",
                ours=stat(ours_failures, "fetches"),
                ratio=stat(ours_failures, "fetches"),
                ratio_meaning="our failed fetches (count, not a ratio)",
                goal=Goal("==", 0),
                goal_on="ours",
            ),
        ],
        notes=[
            "The herd is CPU-bound on this machine: the broker's CPU per fetch (last column; mostly "
            "OpenSSL's side of the handshake) and the client processes' side of every TLS handshake "
            "share the same cores, so the largest herd's p99 is about (server + client CPU per fetch) "
            "x fetches / cores. Executors on other hosts would leave the broker its cores.",
        ],
        tables=[
            Table(
                "Per run",
                ["server", "fetches", "failed", "p50 s", "p99 s", "max s", "server CPU ms per fetch"],
                rows,
            )
        ],
    )


def _row(server: str, fetches: int, result: HerdResult, cpu_ms: float) -> list[Any]:
    return [
        server,
        fetches,
        result.failures,
        f"{result.percentile(0.5):.2f}",
        f"{result.percentile(0.99):.2f}",
        f"{result.latencies[-1]:.2f}" if result.latencies else "-",
        f"{cpu_ms:.2f}",
    ]
