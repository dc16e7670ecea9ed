"""A stand-in listener that answers like a Postgres server that is still starting up.

A real postmaster answers SQLSTATE 57P03 only for the few milliseconds of its own start-up; a Lakebase
endpoint waking from scale-to-zero does so for seconds. To give clients a window they can actually observe,
the emulator holds the port with this listener between "nothing listens" and "the real server is back".
It speaks just enough of the protocol: it accepts SSLRequest (TLS with the server's own certificate),
declines GSSENCRequest, reads the startup packet and sends the same FATAL ErrorResponse Postgres sends.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
from typing import Final

__all__ = ["StartingUpResponder", "starting_up_error"]

logger = logging.getLogger(__name__)

_SSL_REQUEST: Final = 80877103
_GSSENC_REQUEST: Final = 80877104
_CANCEL_REQUEST: Final = 80877102
_MAX_STARTUP_PACKET: Final = 10000  # Postgres' own limit (MAX_STARTUP_PACKET_LENGTH)
_TIMEOUT_SECONDS: Final = 5.0


def starting_up_error() -> bytes:
    """The ErrorResponse Postgres sends to a login while it starts: FATAL 57P03."""
    fields = b"".join(
        code + value.encode() + b"\0"
        for code, value in (
            (b"S", "FATAL"),
            (b"V", "FATAL"),
            (b"C", "57P03"),
            (b"M", "the database system is starting up"),
        )
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


def _recv_exactly(sock: socket.socket | ssl.SSLSocket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("client closed the connection")
        data += chunk
    return data


def _read_packet(sock: socket.socket | ssl.SSLSocket) -> tuple[int, bytes]:
    """One untyped start-up packet: (request code or protocol version, rest of the payload)."""
    (length,) = struct.unpack("!I", _recv_exactly(sock, 4))
    if not 8 <= length <= _MAX_STARTUP_PACKET:
        raise ConnectionError(f"invalid startup packet length {length}")
    payload = _recv_exactly(sock, length - 4)
    (code,) = struct.unpack("!I", payload[:4])
    return code, payload[4:]


class StartingUpResponder:
    """Listen on ``host:port`` and answer every login with 57P03 until :meth:`stop`."""

    def __init__(self, host: str, port: int, *, cert_file: str, key_file: str) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert_file, key_file)
        self._listener = socket.create_server((host, port), reuse_port=False)
        self._listener.settimeout(0.1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="lakebase-emulator-starting-up", daemon=True)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and release the port."""
        self._stopping.set()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    conn, _ = self._listener.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=self._answer, args=(conn,), daemon=True).start()
            # Answer what is already queued: closing a listener resets its pending connections.
            self._listener.setblocking(False)
            while True:
                conn, _ = self._listener.accept()
                conn.setblocking(True)
                threading.Thread(target=self._answer, args=(conn,), daemon=True).start()
        except OSError:  # BlockingIOError: the queue is empty; anything else: the listener is gone
            pass
        finally:
            self._listener.close()

    def _answer(self, conn: socket.socket) -> None:
        sock: socket.socket | ssl.SSLSocket = conn
        try:
            conn.settimeout(_TIMEOUT_SECONDS)
            while True:
                code, _ = _read_packet(sock)
                if code == _SSL_REQUEST and not isinstance(sock, ssl.SSLSocket):
                    sock.sendall(b"S")
                    sock = self._context.wrap_socket(conn, server_side=True)
                elif code == _GSSENC_REQUEST:
                    sock.sendall(b"N")
                elif code == _CANCEL_REQUEST:
                    return
                else:
                    sock.sendall(starting_up_error())
                    return
        except (OSError, ssl.SSLError, struct.error) as e:
            logger.debug("starting-up responder: connection ended: %s", e)
        finally:
            sock.close()
