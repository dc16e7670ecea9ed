"""A minimal LDAP server that answers Postgres' simple-bind login checks.

Postgres' ``ldap`` authentication in simple-bind mode opens a TCP connection, sends one LDAPv3 BindRequest
with the DN ``<prefix><user><suffix>`` and the password the client gave (here: a Lakebase database token),
reads the BindResponse and unbinds. That is the only conversation this server speaks; it lets the
emulator check tokens at login time exactly where real Lakebase does, inside the database's own
authentication, without patching Postgres.

Only the BER subset of RFC 4511 that this conversation needs is implemented: definite lengths of at most
four octets, INTEGER, OCTET STRING, ENUMERATED, SEQUENCE and the application tags of the three operations.
Anything else is answered with ``protocolError`` or by closing the connection.
"""

from __future__ import annotations

import logging
import socket
import socketserver
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from .errors import BerDecodeError, EmulatorNotRunningError
from .serving import ServerThread

__all__ = [
    "AUTH_METHOD_NOT_SUPPORTED",
    "INVALID_CREDENTIALS",
    "MAX_MESSAGE_SIZE",
    "PROTOCOL_ERROR",
    "SUCCESS",
    "BindRequest",
    "LdapRequest",
    "LdapServer",
    "UnbindRequest",
    "UnsupportedRequest",
    "decode_message",
    "encode_bind_response",
    "read_message",
]

logger = logging.getLogger(__name__)

# LDAP result codes (RFC 4511 section 4.1.9) that this server sends.
SUCCESS: Final = 0
PROTOCOL_ERROR: Final = 2
AUTH_METHOD_NOT_SUPPORTED: Final = 7
INVALID_CREDENTIALS: Final = 49

# A bind carries a DN and a token of a few hundred bytes; anything far larger is garbage or abuse.
MAX_MESSAGE_SIZE: Final = 64 * 1024

_SEQUENCE: Final = 0x30
_INTEGER: Final = 0x02
_OCTET_STRING: Final = 0x04
_ENUMERATED: Final = 0x0A
_BIND_REQUEST: Final = 0x60  # [APPLICATION 0] constructed
_BIND_RESPONSE: Final = 0x61  # [APPLICATION 1] constructed
_UNBIND_REQUEST: Final = 0x42  # [APPLICATION 2] primitive (NULL)
_AUTH_SIMPLE: Final = 0x80  # [0] primitive
_AUTH_SASL: Final = 0xA3  # [3] constructed
_CONTROLS: Final = 0xA0  # [0] constructed, optional after protocolOp

# Postgres answers a login within its authentication_timeout (60 s by default); a connection idle for
# longer is not a Postgres login and must not hold a thread forever.
_CONNECTION_TIMEOUT_SECONDS: Final = 60.0


@dataclass(frozen=True)
class BindRequest:
    """A BindRequest; ``password`` is the simple credential (``None`` for SASL) and never shown in repr."""

    message_id: int
    version: int
    name: str
    password: str | None = field(repr=False)


@dataclass(frozen=True)
class UnbindRequest:
    """An UnbindRequest: the client is done and the connection closes."""

    message_id: int


@dataclass(frozen=True)
class UnsupportedRequest:
    """Any other, well-framed operation; ``tag`` is its BER identifier octet."""

    message_id: int
    tag: int


LdapRequest = BindRequest | UnbindRequest | UnsupportedRequest


def _read_length(data: bytes, offset: int) -> tuple[int, int]:
    """Decode the BER length at ``offset``; return (length, offset of the contents)."""
    if offset >= len(data):
        raise BerDecodeError(f"BER length expected at offset {offset}, but the message ends there")
    first = data[offset]
    offset += 1
    if first < 0x80:
        return first, offset
    count = first & 0x7F
    if count == 0:
        raise BerDecodeError("BER indefinite length (0x80) is not allowed in LDAP messages")
    if count > 4:
        raise BerDecodeError(f"BER length uses {count} length octets; at most 4 are supported")
    if offset + count > len(data):
        raise BerDecodeError(f"BER length needs {count} octets at offset {offset}, but the message ends")
    return int.from_bytes(data[offset : offset + count], "big"), offset + count


def _read_tlv(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """Decode the tag-length-value at ``offset``; return (tag, contents, offset after it)."""
    if offset >= len(data):
        raise BerDecodeError(f"BER element expected at offset {offset}, but the message ends there")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise BerDecodeError(f"BER multi-octet tag 0x{tag:02x} is not used by LDAP and not supported")
    length, start = _read_length(data, offset + 1)
    end = start + length
    if end > len(data):
        raise BerDecodeError(
            f"BER element with tag 0x{tag:02x} declares {length} octets but only {len(data) - start} remain"
        )
    return tag, data[start:end], end


def _expect(data: bytes, offset: int, tag: int, what: str) -> tuple[bytes, int]:
    actual, contents, end = _read_tlv(data, offset)
    if actual != tag:
        raise BerDecodeError(f"{what}: expected BER tag 0x{tag:02x}, got 0x{actual:02x}")
    return contents, end


def _decode_int(contents: bytes, what: str) -> int:
    if not 1 <= len(contents) <= 4:
        raise BerDecodeError(f"{what}: INTEGER of {len(contents)} octets; expected 1 to 4")
    return int.from_bytes(contents, "big", signed=True)


def decode_message(data: bytes) -> LdapRequest:
    """Decode one complete LDAPMessage (as framed by :func:`read_message`).

    Raises
    ------
    BerDecodeError
        If the bytes are not a well-formed LDAPMessage. The message never contains the credential.
    """
    contents, end = _expect(data, 0, _SEQUENCE, "LDAPMessage")
    if end != len(data):
        raise BerDecodeError(f"LDAPMessage is followed by {len(data) - end} unexpected octets")
    id_bytes, end_id = _expect(contents, 0, _INTEGER, "messageID")
    message_id = _decode_int(id_bytes, "messageID")
    if message_id < 0:
        raise BerDecodeError(f"messageID must be 0 or more, got {message_id}")
    op_tag, op, end_op = _read_tlv(contents, end_id)
    if end_op < len(contents):
        # The only thing allowed after the operation is the optional controls sequence, which we ignore.
        _expect(contents, end_op, _CONTROLS, "controls")
    if op_tag == _UNBIND_REQUEST:
        return UnbindRequest(message_id)
    if op_tag != _BIND_REQUEST:
        return UnsupportedRequest(message_id, op_tag)
    version_bytes, offset = _expect(op, 0, _INTEGER, "BindRequest version")
    version = _decode_int(version_bytes, "BindRequest version")
    name_bytes, offset = _expect(op, offset, _OCTET_STRING, "BindRequest name")
    auth_tag, auth, offset = _read_tlv(op, offset)
    if offset != len(op):
        raise BerDecodeError(f"BindRequest is followed by {len(op) - offset} unexpected octets")
    try:
        name = name_bytes.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BerDecodeError("BindRequest name is not valid UTF-8") from e
    if auth_tag == _AUTH_SASL:
        return BindRequest(message_id, version, name, None)
    if auth_tag != _AUTH_SIMPLE:
        raise BerDecodeError(
            f"BindRequest authentication: expected simple [0] or sasl [3], got tag 0x{auth_tag:02x}"
        )
    # A token is ASCII; bytes that are not UTF-8 can never match one, so replacing them is safe.
    return BindRequest(message_id, version, name, auth.decode("utf-8", errors="replace"))


def _encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def _tlv(tag: int, contents: bytes) -> bytes:
    return bytes([tag]) + _encode_length(len(contents)) + contents


def _encode_int(tag: int, value: int) -> bytes:
    # Minimal two's complement: one more bit than the magnitude needs, for the sign.
    size = max(1, (value.bit_length() + 8) // 8)
    return _tlv(tag, value.to_bytes(size, "big", signed=True))


def encode_bind_response(message_id: int, result_code: int, diagnostic_message: str = "") -> bytes:
    """Encode LDAPMessage{messageID, BindResponse{resultCode, matchedDN "", diagnosticMessage}}."""
    response = (
        _encode_int(_ENUMERATED, result_code)
        + _tlv(_OCTET_STRING, b"")
        + _tlv(_OCTET_STRING, diagnostic_message.encode("utf-8"))
    )
    return _tlv(_SEQUENCE, _encode_int(_INTEGER, message_id) + _tlv(_BIND_RESPONSE, response))


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = sock.recv(min(remaining, 16384))
        if not chunk:
            raise BerDecodeError(f"connection closed with {remaining} octets of an LDAP message unread")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(sock: socket.socket, max_size: int = MAX_MESSAGE_SIZE) -> bytes | None:
    """Read one BER-framed LDAPMessage from ``sock``; ``None`` on a clean close between messages."""
    first = sock.recv(2)
    if not first:
        return None
    header = first if len(first) == 2 else first + _recv_exactly(sock, 1)
    if header[0] != _SEQUENCE:
        raise BerDecodeError(f"LDAPMessage must start with SEQUENCE (0x30), got 0x{header[0]:02x}")
    if header[1] & 0x80:
        count = header[1] & 0x7F
        if count == 0 or count > 4:
            raise BerDecodeError(f"LDAPMessage length uses {count} length octets; expected 1 to 4")
        header += _recv_exactly(sock, count)
    length, _ = _read_length(header, 1)
    if length > max_size:
        raise BerDecodeError(f"LDAPMessage of {length} octets exceeds the limit of {max_size}")
    return header + _recv_exactly(sock, length)


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], ldap: LdapServer) -> None:
        self.ldap = ldap
        super().__init__(address, _Handler)


class _Handler(socketserver.BaseRequestHandler):
    server: _TcpServer
    request: socket.socket

    def handle(self) -> None:
        self.request.settimeout(_CONNECTION_TIMEOUT_SECONDS)
        ldap = self.server.ldap
        try:
            while True:
                data = read_message(self.request)
                if data is None:
                    return
                request = decode_message(data)
                if isinstance(request, UnbindRequest):
                    return
                if isinstance(request, UnsupportedRequest):
                    logger.debug("LDAP operation with tag 0x%02x is not supported; closing", request.tag)
                    return
                self.request.sendall(ldap.answer_bind(request))
        except BerDecodeError as e:
            logger.debug("malformed LDAP message from %s: %s", self.client_address, e)
        except OSError as e:  # timeouts, resets: the client is gone either way
            logger.debug("LDAP connection from %s ended: %s", self.client_address, e)


class LdapServer:
    """Threaded LDAP server on ``host:port`` that validates simple binds with a callback.

    Parameters
    ----------
    validate
        ``(user, password) -> bool``, called for each simple bind whose DN has the form
        ``<dn_prefix><user><dn_suffix>``. It may block (to emulate a slow login) and is called
        from the server's connection threads concurrently.
    dn_prefix, dn_suffix
        Must match ``ldapprefix`` and ``ldapsuffix`` in Postgres' pg_hba.conf.
    """

    def __init__(
        self,
        validate: Callable[[str, str], bool],
        *,
        dn_prefix: str = "uid=",
        dn_suffix: str = ",ou=lakebase",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._validate = validate
        self.dn_prefix = dn_prefix
        self.dn_suffix = dn_suffix
        self._address = (host, port)
        self._serving: ServerThread | None = None

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._serving is None:
            raise EmulatorNotRunningError("LDAP server is not started; call start() first")
        return self._serving.port

    def user_of(self, dn: str) -> str | None:
        """The user name inside a bind DN, or ``None`` if the DN does not have our form."""
        if len(dn) <= len(self.dn_prefix) + len(self.dn_suffix):
            return None
        if not (dn.startswith(self.dn_prefix) and dn.endswith(self.dn_suffix)):
            return None
        return dn[len(self.dn_prefix) : len(dn) - len(self.dn_suffix)]

    def answer_bind(self, request: BindRequest) -> bytes:
        """The encoded BindResponse for ``request``."""
        if request.version != 3:
            return encode_bind_response(request.message_id, PROTOCOL_ERROR, "only LDAPv3 is supported")
        if request.password is None:
            return encode_bind_response(request.message_id, AUTH_METHOD_NOT_SUPPORTED, "only simple bind")
        user = self.user_of(request.name)
        try:
            ok = user is not None and bool(request.password) and self._validate(user, request.password)
        except Exception:  # a server boundary: refuse this login, keep serving, show the bug
            logger.exception("LDAP login validator failed for user %r; refusing the login", user)
            ok = False
        logger.debug("LDAP bind for %r: %s", user, "success" if ok else "invalid credentials")
        return encode_bind_response(request.message_id, SUCCESS if ok else INVALID_CREDENTIALS)

    def start(self) -> None:
        """Listen and serve in a background thread."""
        if self._serving is None:
            self._serving = ServerThread(_TcpServer(self._address, self), name="lakebase-emulator-ldap")

    def stop(self) -> None:
        """Stop listening; idempotent."""
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.stop()
