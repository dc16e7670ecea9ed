"""Runs a ``socketserver`` server in a daemon thread: what the emulator's HTTP and LDAP servers share."""

from __future__ import annotations

import socketserver
import threading

__all__ = ["ServerThread"]


class ServerThread:
    """Serve ``server`` in the background; :meth:`stop` shuts it down, closes it and joins the thread."""

    def __init__(self, server: socketserver.BaseServer, *, name: str) -> None:
        self.server = server
        # A short poll interval makes stop() (and so test teardown) quick.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=name, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        address = self.server.server_address
        if not isinstance(address, tuple):
            raise TypeError(f"{self.server!r} does not listen on a TCP port")
        return int(address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
