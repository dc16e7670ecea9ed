"""What the catalog's coordination routes share: their registration on a broker, and their fields."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..serving.service import BrokerService

__all__ = ["serve", "text_field"]

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def serve(broker: BrokerService, routes: Mapping[str, Handler]) -> None:
    """Serve ``routes`` on ``broker``, unless it already serves them (one coordinator per broker)."""
    if all(broker.serves(path) for path in routes):
        return
    for path, handler in routes.items():
        broker.route(path, handler)


def text_field(request: dict[str, Any], name: str, error: Callable[[str], Exception]) -> str:
    """The request's non-empty string ``name``, else ``error(message)``."""
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise error(f"the catalog's request has no {name!r}")
    return value
