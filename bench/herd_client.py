"""A herd of simultaneous TLS token fetches against a broker service, from separate client processes.

What a wide stage does when it starts: every executor JVM asks the driver's broker at the same moment.
The clients run in ``PROCESSES`` processes of their own (spawned, so each has its own interpreter and
GIL), each with one thread per fetch, all released at one wall-clock instant; each fetch is a new
TLS connection and one ``GET /v1/token``, as the JVM client makes it. Loopback only; used by the
test suite (a small herd) and ``bench`` (2,000 fetches).
"""

from __future__ import annotations

import multiprocessing
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["PROCESSES", "HerdResult", "herd"]

PROCESSES = 4


@dataclass(frozen=True)
class HerdResult:
    fetches: int
    failures: int
    latencies: list[float]  # seconds, sorted, one per successful fetch
    errors: list[str]

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        return self.latencies[min(len(self.latencies) - 1, int(p * len(self.latencies)))]


def _client(
    host: str, port: int, path: str, auth: str, n: int, start_at: float, out: multiprocessing.Queue[Any]
) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the JVM pins the fingerprint; the cost is the same
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {auth}\r\n"
        "Accept: application/json\r\nConnection: close\r\n\r\n"
    ).encode()
    results: list[tuple[bool, float, str]] = []
    lock = threading.Lock()
    ready = threading.Barrier(n)

    def fetch() -> None:
        ready.wait()
        while time.time() < start_at:
            time.sleep(0.0005)
        began = time.perf_counter()
        try:
            # A bare TLS socket and one request, as the JVM client sends it (no http.client overhead:
            # the clients share this machine's cores with the broker they measure).
            with (
                socket.create_connection((host, port), timeout=60) as raw,
                context.wrap_socket(raw, server_hostname=host) as tls,
            ):
                tls.sendall(request)
                answer = b""
                while chunk := tls.recv(65536):
                    answer += chunk
            status = answer[9:12].decode(errors="replace")
            ok, error = status == "200", "" if status == "200" else f"HTTP {status}"
        except Exception as e:  # every failure is counted and reported
            ok, error = False, type(e).__name__
        with lock:
            results.append((ok, time.perf_counter() - began, error))

    threads = [threading.Thread(target=fetch) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(results)


def herd(host: str, port: int, path: str, auth: str, fetches: int) -> HerdResult:
    """``fetches`` simultaneous fetches of ``path``; returns every latency and failure."""
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[Any] = ctx.Queue()
    start_at = time.time() + 3.0 + fetches / 1000  # every client thread is started and waiting by then
    share = [fetches // PROCESSES + (1 if i < fetches % PROCESSES else 0) for i in range(PROCESSES)]
    procs = [
        ctx.Process(target=_client, args=(host, port, path, auth, n, start_at, queue)) for n in share if n
    ]
    for p in procs:
        p.start()
    results: list[tuple[bool, float, str]] = []
    for _ in procs:
        results += queue.get(timeout=300)
    for p in procs:
        p.join(timeout=60)
    return HerdResult(
        fetches=len(results),
        failures=sum(1 for ok, _, _ in results if not ok),
        latencies=sorted(lat for ok, lat, _ in results if ok),
        errors=sorted({e for ok, _, e in results if not ok}),
    )
