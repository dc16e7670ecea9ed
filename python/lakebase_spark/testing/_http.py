"""The emulated workspace API's HTTP side: a threaded server whose handler reads a request, hands it
to the API (:class:`.api.WorkspaceApi`) and writes the JSON answer, or the error it raised."""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol

__all__ = ["ApiError", "Handles", "HttpServer"]

logger = logging.getLogger("lakebase_spark.testing.api")

_MAX_BODY_BYTES: Final = 1024 * 1024


class Handles(Protocol):
    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]: ...


class ApiError(Exception):
    """An error response: Databricks JSON body, or an OAuth error body for the token endpoint."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        oauth: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = dict(headers or {})
        self.oauth = oauth

    def body(self) -> dict[str, Any]:
        if self.oauth:
            return {"error": self.error_code, "error_description": self.message}
        return {"error_code": self.error_code, "message": self.message}


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], api: Handles) -> None:
        self.api = api
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: HttpServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's requests session expects
    server_version = "LakebaseEmulator"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are logged by _dispatch, without query strings or headers

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        path = urllib.parse.urlsplit(self.path).path
        status = 500
        try:
            body = self._read_body()
            request_headers = {name.lower(): value for name, value in self.headers.items()}
            status, payload, headers = self.server.api.handle(method, path, request_headers, body)
        except ApiError as e:
            status, payload, headers = e.status, e.body(), e.headers
        except Exception:
            logger.exception("emulator API failed on %s %s", method, path)
            status, payload, headers = 500, {"error_code": "INTERNAL_ERROR", "message": "emulator error"}, {}
        finally:
            logger.debug("%s %s -> %d (%.1f ms)", method, path, status, (time.monotonic() - started) * 1000)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        length_header = self.headers.get("Content-Length", "0")
        try:
            length = int(length_header)
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "MALFORMED_REQUEST", f"invalid Content-Length {length_header!r}") from None
        if length > _MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would be taken for the next request
            raise ApiError(
                413, "MALFORMED_REQUEST", f"request body of {length} bytes exceeds {_MAX_BODY_BYTES}"
            )
        return self.rfile.read(length) if length > 0 else b""
