"""The emulated Databricks workspace REST API, as the real ``databricks-sdk`` calls it.

Routes, as called by databricks-sdk 0.156:

- ``GET /.well-known/databricks-config``: host metadata, read by every ``Config()``; its ``oidc_endpoint``
  is where OAuth M2M discovers its token endpoint (without it M2M cannot be configured).
- ``GET /oidc/.well-known/oauth-authorization-server`` and ``POST /oidc/v1/token``: OAuth client credentials.
- ``GET /api/2.0/preview/scim/v2/Me``: ``current_user.me()``.
- ``GET /api/2.0/postgres/{name}`` and ``POST /api/2.0/postgres/credentials``: Lakebase Autoscaling.
- ``GET /api/2.0/database/instances/{name}`` and ``POST /api/2.0/database/credentials``: Lakebase Provisioned.

Every ``/api/`` route needs ``Authorization: Bearer <PAT or OAuth access token>``. Errors use Databricks'
JSON shape ``{"error_code": ..., "message": ...}``, which the SDK maps to ``databricks.sdk.errors`` classes.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any, Final

from ._http import ApiError, HttpServer
from .errors import EmulatorNotRunningError
from .faults import Faults, InjectedError
from .identity import Directory, Principal, PrincipalKind
from .resources import Resources, rfc3339
from .serving import ServerThread
from .stats import ApiStats
from .tokens import TokenStore

__all__ = ["MAX_CREDENTIAL_TTL_SECONDS", "MIN_CREDENTIAL_TTL_SECONDS", "Route", "WorkspaceApi"]

logger = logging.getLogger(__name__)

# Bounds Lakebase puts on a requested credential lifetime (the SDK documents "300 to 3600 seconds").
MIN_CREDENTIAL_TTL_SECONDS: Final = 300.0
MAX_CREDENTIAL_TTL_SECONDS: Final = 3600.0
# Slack for a requested expire_time computed client-side a moment before the request arrives.
_EXPIRE_TIME_SLACK_SECONDS: Final = 5.0
_DURATION = re.compile(r"(\d+)(\.\d{1,9})?s")
_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|z|[+-]\d{2}:\d{2})")


class Route(str, Enum):
    """API routes, as counted in :class:`~.stats.ApiStats`."""

    HOST_METADATA = "GET /.well-known/databricks-config"
    OIDC_DISCOVERY = "GET /oidc/.well-known/oauth-authorization-server"
    OIDC_TOKEN = "POST /oidc/v1/token"  # noqa: S105 - a route, not a secret
    SCIM_ME = "GET /api/2.0/preview/scim/v2/Me"
    GET_POSTGRES_RESOURCE = "GET /api/2.0/postgres/{name}"
    POSTGRES_CREDENTIALS = "POST /api/2.0/postgres/credentials"
    GET_DATABASE_INSTANCE = "GET /api/2.0/database/instances/{name}"
    DATABASE_CREDENTIALS = "POST /api/2.0/database/credentials"
    UNKNOWN = "unknown"


def _parse_duration(value: object) -> float:
    """A protobuf JSON Duration such as ``"300s"`` or ``"300.5s"``, in seconds."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"ttl must be a duration like '300s', got {value!r}")
    return float(match.group(1) + (match.group(2) or ""))


def _parse_timestamp(value: object) -> float:
    """An RFC 3339 timestamp with zone (``Z`` or ``+hh:mm``, any fraction digits), in epoch seconds."""
    match = _TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ApiError(
            400,
            "INVALID_PARAMETER_VALUE",
            f"expire_time must be an RFC 3339 timestamp with zone, got {value!r}",
        )
    whole, fraction, zone = match.groups()
    # Python 3.10's fromisoformat takes neither "Z" nor 9 fraction digits: parse those parts ourselves.
    try:
        moment = datetime.fromisoformat(whole + ("+00:00" if zone in ("Z", "z") else zone))
    except ValueError:
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"expire_time {value!r} is not a valid date") from None
    return moment.timestamp() + float(fraction or 0)


class WorkspaceApi:
    """HTTP server for the emulated workspace on ``127.0.0.1:<port>`` (plain HTTP, local only).

    Parameters
    ----------
    token_ttl
        Returns the current lifetime cap of database credentials, in seconds (settable at runtime).
    """

    def __init__(
        self,
        *,
        directory: Directory,
        resources: Resources,
        tokens: TokenStore,
        faults: Faults,
        stats: ApiStats,
        token_ttl: Callable[[], float],
        workspace_id: str,
        account_id: str,
        port: int = 0,
    ) -> None:
        self._directory = directory
        self._resources = resources
        self._tokens = tokens
        self._faults = faults
        self._stats = stats
        self._token_ttl = token_ttl
        self.workspace_id = workspace_id
        self.account_id = account_id
        self._port = port
        self._serving: ServerThread | None = None

    @property
    def port(self) -> int:
        """The TCP port of the API."""
        if self._serving is None:
            raise EmulatorNotRunningError("workspace API is not started; call start() first")
        return self._serving.port

    @property
    def url(self) -> str:
        """The workspace URL, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen and serve in a background thread."""
        if self._serving is None:
            self._serving = ServerThread(
                HttpServer(("127.0.0.1", self._port), self), name="lakebase-emulator-api"
            )

    def stop(self) -> None:
        """Stop serving; idempotent."""
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.stop()

    # -- routing --------------------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Serve one request: (status, JSON body, extra headers); errors raise :class:`ApiError`.

        ``headers`` are the request headers with lower-cased names.
        """
        route, argument = self._route(method, path)
        self._stats.record_call(route.value)
        if self._faults.api_down:
            raise ApiError(
                503, "TEMPORARILY_UNAVAILABLE", "The workspace is unavailable (faults.api_down_for)."
            )
        if route is Route.HOST_METADATA:
            return 200, self._host_metadata(), {}
        if route is Route.OIDC_DISCOVERY:
            return 200, self._oidc_discovery(), {}
        if route is Route.OIDC_TOKEN:
            return 200, self._oidc_token(headers, body), {"Cache-Control": "no-store"}
        if route is Route.UNKNOWN:
            if path.startswith("/api/"):
                self._authenticate(headers)  # like Databricks: authentication comes before routing
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")
        principal = self._authenticate(headers)
        if route is Route.SCIM_ME:
            return 200, self._me(principal), {"X-Databricks-Org-Id": self.workspace_id}
        if route is Route.GET_POSTGRES_RESOURCE:
            endpoint = self._resources.endpoint(argument)
            if endpoint is None:
                raise ApiError(404, "NOT_FOUND", f"Resource '{argument}' does not exist.")
            return 200, endpoint.to_json(state="INIT" if self._faults.cold_starting else "ACTIVE"), {}
        if route is Route.GET_DATABASE_INSTANCE:
            instance = self._resources.instance(argument)
            if instance is None:
                raise ApiError(404, "NOT_FOUND", f"Database instance '{argument}' does not exist.")
            return 200, instance.to_json(state="STARTING" if self._faults.cold_starting else "AVAILABLE"), {}
        request = self._json(body)
        self._before_mint()
        if route is Route.POSTGRES_CREDENTIALS:
            return 200, self._postgres_credential(principal, request), {}
        return 200, self._database_credential(principal, request), {}

    @staticmethod
    def _route(method: str, path: str) -> tuple[Route, str]:
        fixed = {
            ("GET", "/.well-known/databricks-config"): Route.HOST_METADATA,
            ("GET", "/oidc/.well-known/oauth-authorization-server"): Route.OIDC_DISCOVERY,
            ("POST", "/oidc/v1/token"): Route.OIDC_TOKEN,
            ("GET", "/api/2.0/preview/scim/v2/Me"): Route.SCIM_ME,
            ("POST", "/api/2.0/postgres/credentials"): Route.POSTGRES_CREDENTIALS,
            ("POST", "/api/2.0/database/credentials"): Route.DATABASE_CREDENTIALS,
        }
        route = fixed.get((method, path))
        if route is not None:
            return route, ""
        name = urllib.parse.unquote(path)
        if (
            method == "GET"
            and name.startswith("/api/2.0/postgres/")
            and len(name) > len("/api/2.0/postgres/")
        ):
            return Route.GET_POSTGRES_RESOURCE, name[len("/api/2.0/postgres/") :]
        prefix = "/api/2.0/database/instances/"
        if (
            method == "GET"
            and name.startswith(prefix)
            and len(name) > len(prefix)
            and "/" not in name[len(prefix) :]
        ):
            return Route.GET_DATABASE_INSTANCE, name[len(prefix) :]
        return Route.UNKNOWN, ""

    # -- authentication -------------------------------------------------------------------------------

    def _authenticate(self, headers: Mapping[str, str]) -> Principal:
        scheme, _, credential = (headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise ApiError(
                401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API."
            )
        principal = self._directory.authenticate(credential.strip())
        if principal is None:
            raise ApiError(401, "UNAUTHENTICATED", "Invalid access token.")
        return principal

    def _client_credentials(
        self, headers: Mapping[str, str], form: Mapping[str, list[str]]
    ) -> tuple[str, str]:
        scheme, _, encoded = (headers.get("authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, sep, secret = (
                    base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                sep = ""
            if not sep:
                raise ApiError(
                    401, "invalid_client", "Malformed HTTP Basic client authentication.", oauth=True
                )
            return client_id, secret
        client_ids, secrets_ = form.get("client_id", []), form.get("client_secret", [])
        if len(client_ids) == 1 and len(secrets_) == 1:
            return client_ids[0], secrets_[0]
        raise ApiError(
            401,
            "invalid_client",
            "Client authentication is required: HTTP Basic or client_id and client_secret form fields.",
            oauth=True,
        )

    # -- handlers -------------------------------------------------------------------------------------

    def _host_metadata(self) -> dict[str, Any]:
        return {
            "oidc_endpoint": f"{self.url}/oidc",
            "account_id": self.account_id,
            "workspace_id": self.workspace_id,
            "cloud": "aws",
        }

    def _oidc_discovery(self) -> dict[str, Any]:
        base = f"{self.url}/oidc"
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/v1/authorize",
            "token_endpoint": f"{base}/v1/token",
            "jwks_uri": f"{base}/jwks.json",
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": ["code"],
            "scopes_supported": ["all-apis"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    def _oidc_token(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        try:
            form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError):
            raise ApiError(
                400, "invalid_request", "Body must be application/x-www-form-urlencoded.", oauth=True
            ) from None
        grant = form.get("grant_type", [""])[0]
        if grant != "client_credentials":
            raise ApiError(
                400,
                "unsupported_grant_type",
                f"grant_type {grant!r} is not supported; use client_credentials",
                oauth=True,
            )
        client_id, secret = self._client_credentials(headers, form)
        token = self._directory.issue_access_token(client_id, secret)
        if token is None:
            raise ApiError(401, "invalid_client", "Client authentication failed.", oauth=True)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(self._directory.access_token_ttl),
            "scope": form.get("scope", ["all-apis"])[0],
        }

    def _me(self, principal: Principal) -> dict[str, Any]:
        me: dict[str, Any] = {
            "id": principal.id,
            "userName": principal.name,
            "displayName": principal.display_name,
            "active": True,
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:workspace:2.0:User",
            ],
        }
        if principal.kind is PrincipalKind.USER:
            me["emails"] = [{"value": principal.name, "type": "work", "primary": True}]
        return me

    @staticmethod
    def _json(body: bytes) -> dict[str, Any]:
        try:
            parsed = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(400, "MALFORMED_REQUEST", "Request body is not valid JSON.") from None
        if not isinstance(parsed, dict):
            raise ApiError(400, "MALFORMED_REQUEST", "Request body must be a JSON object.")
        return parsed

    def _before_mint(self) -> None:
        delay = self._faults.mint_delay
        if delay > 0:
            time.sleep(delay)
        injected: InjectedError | None = self._faults.next_mint_failure()
        if injected is not None:
            headers = {} if injected.retry_after is None else {"Retry-After": str(injected.retry_after)}
            raise ApiError(injected.status, injected.error_code, injected.message, headers=headers)

    def _mint(self, principal: Principal, requested_ttl: float | None) -> tuple[str, datetime]:
        ttl = self._token_ttl()
        if requested_ttl is not None:
            ttl = min(ttl, requested_ttl)
        token, expires = self._tokens.mint(principal.name, ttl)
        self._stats.record_mint(principal.name)
        return token, expires

    def _requested_ttl(self, request: Mapping[str, Any]) -> float | None:
        ttl, expire_time = request.get("ttl"), request.get("expire_time")
        if ttl is not None and expire_time is not None:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "Specify at most one of ttl and expire_time.")
        if ttl is not None:
            seconds = _parse_duration(ttl)
            if not MIN_CREDENTIAL_TTL_SECONDS <= seconds <= MAX_CREDENTIAL_TTL_SECONDS:
                raise ApiError(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    f"ttl must be between {MIN_CREDENTIAL_TTL_SECONDS:.0f}s and"
                    f" {MAX_CREDENTIAL_TTL_SECONDS:.0f}s, got {ttl!r}",
                )
            return seconds
        if expire_time is not None:
            seconds = _parse_timestamp(expire_time) - self._tokens.now()
            low = MIN_CREDENTIAL_TTL_SECONDS - _EXPIRE_TIME_SLACK_SECONDS
            high = MAX_CREDENTIAL_TTL_SECONDS + _EXPIRE_TIME_SLACK_SECONDS
            if not low <= seconds <= high:
                raise ApiError(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    f"expire_time must be 300 seconds to 1 hour from now, got {expire_time!r}",
                )
            return seconds
        return None

    def _postgres_credential(self, principal: Principal, request: Mapping[str, Any]) -> dict[str, Any]:
        endpoint = request.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "Field 'endpoint' is required.")
        requested = self._requested_ttl(request)
        if self._resources.endpoint(endpoint) is None:
            raise ApiError(404, "NOT_FOUND", f"Endpoint '{endpoint}' does not exist.")
        project = endpoint.split("/")[1]
        if not self._resources.can_use(f"project {project}"):
            raise ApiError(
                403, "PERMISSION_DENIED", f"User does not have CAN_USE permission on the project '{project}'."
            )
        token, expires = self._mint(principal, requested)
        return {"token": token, "expire_time": rfc3339(expires)}

    def _database_credential(self, principal: Principal, request: Mapping[str, Any]) -> dict[str, Any]:
        names = request.get("instance_names")
        if names is None and not request.get("claims"):
            raise ApiError(
                400, "INVALID_PARAMETER_VALUE", "At least one of instance_names or claims must be specified."
            )
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "instance_names must be a list of instance names.")
        for name in names or []:
            if self._resources.instance(name) is None:
                raise ApiError(404, "NOT_FOUND", f"Database instance '{name}' does not exist.")
            if not self._resources.can_use(f"instance {name}"):
                denied = f"User does not have CAN_USE permission on the instance '{name}'."
                raise ApiError(403, "PERMISSION_DENIED", denied)
        token, expires = self._mint(principal, None)
        return {"token": token, "expiration_time": rfc3339(expires)}
