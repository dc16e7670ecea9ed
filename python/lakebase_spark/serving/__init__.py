"""The broker service: serves the token broker's tokens over TLS to the JVM provider on the driver and the
executors (``service``: the service and the process's shared ones; ``_http``: the wire protocol and
server; ``certificates``: the pinned self-signed certificate). Depends on ``tokens`` and the root."""
