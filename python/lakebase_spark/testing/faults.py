"""Fault injection: workspace API outages, failed or slow mints, slow or refused logins, cold starts,
replication slots dropped or invalidated."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Final, Protocol

from .errors import EmulatorNotRunningError

__all__ = ["DEFAULT_ERROR_CODES", "Faults", "InjectedError", "Suspendable"]

# The error_code Databricks sends with each status; the SDK maps codes first, then statuses, to exceptions.
DEFAULT_ERROR_CODES: Final[dict[int, str]] = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    501: "NOT_IMPLEMENTED",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass(frozen=True)
class InjectedError:
    """One injected API error; ``retry_after`` seconds go in a ``Retry-After`` header unless ``None``."""

    status: int
    error_code: str
    message: str
    retry_after: int | None


class Suspendable(Protocol):
    """What cold starts and slot faults need from the database server."""

    def suspend(self, *, crash: bool = False) -> None:
        """Stop now; connections are refused from when this returns."""

    def wake(self, down_seconds: float, starting_seconds: float) -> None:
        """Wait, answer 57P03 for a while, then serve again; blocks until ready."""

    def drop_slot(self, name: str) -> None:
        """Drop a replication slot (its reader disconnected)."""

    def invalidate_slot(self, name: str) -> None:
        """Make a replication slot invalid (``wal_status`` lost)."""


@dataclass
class _Pending:
    error: InjectedError
    remaining: int


def _non_negative(name: str, value: float) -> float:
    if not value >= 0:
        raise ValueError(f"{name} must be 0 or more seconds, got {value!r}")
    return float(value)


class Faults:
    """Runtime-configurable, thread-safe fault injection for one emulator.

    Windows (``refuse_logins_for``) are measured with ``clock``, real monotonic time by default, not with
    the emulator's token clock: they are about how clients retry in real time.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # Guards every field below; never held while sleeping or restarting.
        self._lock = threading.Lock()
        self._mint_failures: deque[_Pending] = deque()  # FIFO
        self._mint_delay = 0.0
        self._login_delay = 0.0
        self._refuse_logins_until = 0.0
        self._api_down_until = 0.0
        self._server: Suspendable | None = None
        self._cold_start: Future[None] | None = None

    def __repr__(self) -> str:
        return (
            f"Faults(pending_mint_failures={self.pending_mint_failures}, mint_delay={self.mint_delay},"
            f" login_delay={self.login_delay}, logins_refused={self.logins_refused},"
            f" api_down={self.api_down},"
            f" cold_starting={self.cold_starting})"
        )

    # -- workspace API --------------------------------------------------------------------------------

    def api_down_for(self, seconds: float) -> None:
        """Answer every workspace API call (credentials, endpoints, SCIM, OAuth) with 503 for ``seconds``.

        A whole-workspace outage, as opposed to :meth:`fail_mints`' counted failures. 0 ends it now.
        The SDK retries 503 within its ``retry_timeout_seconds``, so a client with the default budget
        waits out a short window by itself.
        """
        duration = _non_negative("seconds", seconds)
        with self._lock:
            self._api_down_until = self._clock() + duration

    @property
    def api_down(self) -> bool:
        """Whether an outage window is open now."""
        with self._lock:
            return self._clock() < self._api_down_until

    # -- credential API -------------------------------------------------------------------------------

    def fail_mints(
        self,
        count: int = 1,
        *,
        status: int = 503,
        error_code: str | None = None,
        message: str | None = None,
        retry_after: int | None = 0,
    ) -> None:
        """Answer the next ``count`` credential calls (Autoscaling and Provisioned) with an error.

        Queued after failures already pending. ``error_code`` defaults to Databricks' code for ``status``
        (503 ``TEMPORARILY_UNAVAILABLE``, 429 ``REQUEST_LIMIT_EXCEEDED``, 403 ``PERMISSION_DENIED``, ...).
        ``retry_after`` becomes a ``Retry-After`` header (the SDK retries 429 and 503 by itself after that
        many seconds, plus up to one second of jitter); ``None`` omits it.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive int, got {count!r}")
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status!r}")
        if retry_after is not None and retry_after < 0:
            raise ValueError(
                f"retry_after must be 0 or more seconds, or None to omit it; got {retry_after!r}"
            )
        error = InjectedError(
            status,
            error_code or DEFAULT_ERROR_CODES.get(status, "UNKNOWN"),
            message or f"Injected failure {status} from the Lakebase emulator (faults.fail_mints).",
            retry_after,
        )
        with self._lock:
            self._mint_failures.append(_Pending(error, count))

    @property
    def pending_mint_failures(self) -> int:
        """Credential calls that will still fail."""
        with self._lock:
            return sum(p.remaining for p in self._mint_failures)

    def next_mint_failure(self) -> InjectedError | None:
        """Consume and return the error for this credential call, if one is pending."""
        with self._lock:
            if not self._mint_failures:
                return None
            head = self._mint_failures[0]
            head.remaining -= 1
            if head.remaining == 0:
                self._mint_failures.popleft()
            return head.error

    @property
    def mint_delay(self) -> float:
        """Seconds every credential call waits before answering."""
        with self._lock:
            return self._mint_delay

    @mint_delay.setter
    def mint_delay(self, seconds: float) -> None:
        value = _non_negative("mint_delay", seconds)
        with self._lock:
            self._mint_delay = value

    # -- logins ---------------------------------------------------------------------------------------

    @property
    def login_delay(self) -> float:
        """Seconds every login check (LDAP bind) waits before answering."""
        with self._lock:
            return self._login_delay

    @login_delay.setter
    def login_delay(self, seconds: float) -> None:
        value = _non_negative("login_delay", seconds)
        with self._lock:
            self._login_delay = value

    def refuse_logins_for(self, seconds: float) -> None:
        """Refuse every login, even with a valid token, for ``seconds`` from now (0 ends a window)."""
        duration = _non_negative("seconds", seconds)
        with self._lock:
            self._refuse_logins_until = self._clock() + duration

    @property
    def logins_refused(self) -> bool:
        """Whether a refusal window is open now."""
        with self._lock:
            return self._clock() < self._refuse_logins_until

    # -- cold start -----------------------------------------------------------------------------------

    def bind_server(self, server: Suspendable | None) -> None:
        """Set (or clear) the database server that :meth:`cold_start` suspends and wakes."""
        with self._lock:
            self._server = server

    def cold_start(
        self, *, down_seconds: float = 1.0, starting_seconds: float = 1.0, crash: bool = False
    ) -> Future[None]:
        """Suspend Postgres now and wake it in a background thread, like a scale-to-zero endpoint.

        When this returns the server is down and open connections are terminated. For ``down_seconds``
        connections are refused (nothing listens); for the next ``starting_seconds`` they are answered
        with SQLSTATE 57P03 "the database system is starting up"; then the real server accepts logins
        again. The endpoint reports state ``INIT`` meanwhile. The returned future completes when Postgres
        accepts connections (or fails with the restart's error). ``crash``: Postgres stops as in a crash
        (immediate shutdown, no checkpoint: replication slots come back at their last checkpointed
        position).
        """
        down = _non_negative("down_seconds", down_seconds)
        starting = _non_negative("starting_seconds", starting_seconds)
        with self._lock:
            server = self._server
            if server is None:
                raise EmulatorNotRunningError("cold_start needs a running emulator; call start() first")
            if self._cold_start is not None and not self._cold_start.done():
                raise RuntimeError("a cold start is already in progress; wait for the future it returned")
            future: Future[None] = Future()
            future.set_running_or_notify_cancel()
            self._cold_start = future
        try:
            server.suspend(crash=crash)
        except BaseException as e:
            future.set_exception(e)
            raise

        def wake() -> None:
            try:
                server.wake(down, starting)
            except BaseException as e:  # handed to whoever waits on the future
                future.set_exception(e)
            else:
                future.set_result(None)

        threading.Thread(target=wake, name="lakebase-emulator-cold-start", daemon=True).start()
        return future

    # -- replication slots ----------------------------------------------------------------------------

    def drop_slot(self, name: str) -> None:
        """Drop replication slot ``name``, as Lakebase does to a slot idle for about 40 hours or on a
        branch restore."""
        self._bound("drop_slot").drop_slot(name)

    def invalidate_slot(self, name: str) -> None:
        """Invalidate replication slot ``name`` (``wal_status`` lost): the server removed WAL it still
        needed, as when ``max_slot_wal_keep_size`` is exceeded while its stream is stopped."""
        self._bound("invalidate_slot").invalidate_slot(name)

    def _bound(self, what: str) -> Suspendable:
        with self._lock:
            if self._server is None:
                raise EmulatorNotRunningError(f"{what} needs a running emulator; call start() first")
            return self._server

    @property
    def cold_starting(self) -> bool:
        """Whether a cold start is in progress."""
        with self._lock:
            return self._cold_start is not None and not self._cold_start.done()

    def clear(self) -> None:
        """Drop pending failures, delays and refusal windows (a running cold start continues)."""
        with self._lock:
            self._mint_failures.clear()
            self._mint_delay = 0.0
            self._login_delay = 0.0
            self._refuse_logins_until = 0.0
            self._api_down_until = 0.0
