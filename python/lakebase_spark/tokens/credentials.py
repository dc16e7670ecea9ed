"""Secret and credential value types: a token is never shown by ``repr``, ``str`` or a log line."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..errors import InvalidArgumentError

__all__ = ["Credential", "Secret"]


class Secret:
    """A string that never prints. Call :meth:`reveal` at the one place the value is needed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise InvalidArgumentError("a Secret cannot be empty", argument="value")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would ship the secret into Spark closures or caches by accident.
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class Credential:
    """A database login minted by the workspace: the token and the server's own expiry.

    Times are seconds on the broker's clock (``time.time`` unless a clock is injected).
    """

    token: Secret
    principal: str
    expires_at: float
    minted_at: float
    #: When the broker stops handing this token out and mints the next one.
    refresh_at: float = field(default=0.0)

    def lifetime(self) -> float:
        return self.expires_at - self.minted_at

    def digest(self) -> str:
        """Names this token without revealing it: hex of the first 16 bytes of its SHA-256."""
        return hashlib.sha256(self.token.reveal().encode()).hexdigest()[:32]
