# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One Redis / Sentinel connection helper for every tgstack.hybrid module.

Connections use redis-py (Debian package python3-redis on the managed host). Errors are raised as
``ConnectionFailed`` with the server's own message and never the password.
"""

from __future__ import annotations

import typing as t

try:
    import redis

    HAS_REDIS = True
    REDIS_IMPORT_ERROR = None
except ImportError as import_error:  # pragma: no cover - depends on the target host
    redis = None
    HAS_REDIS = False
    REDIS_IMPORT_ERROR = import_error


class TgstackRedisError(Exception):
    """An error a module reports as "<what it was doing>: <cause>"."""


class ConnectionFailed(TgstackRedisError):
    pass


def parse_address(address: str, default_port: int) -> tuple[str, int]:
    """Split "host:port", "[v6]:port", "host" into (host, port)."""
    text = address.strip()
    if not text:
        raise TgstackRedisError("an empty address was given")
    if text.startswith("["):
        host, rest = text[1:].split("]", 1) if "]" in text else (text[1:], "")
        port_text = rest.lstrip(":")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise TgstackRedisError(f"'{address}' is not of the form host:port")
    return host, int(port_text)


def format_address(host: str, port: int) -> str:
    """The inverse of parse_address: "host:port", IPv6 addresses in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect(
    host: str,
    port: int,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 2.0,
) -> t.Any:
    """Open a client and check it with PING; raise ConnectionFailed with a readable cause.

    Works for data nodes and for Sentinels (both speak RESP and answer PING and AUTH).
    """
    if not HAS_REDIS:
        raise ConnectionFailed(
            f"the Python module redis is missing on the host that runs the module: install python3-redis "
            f"({REDIS_IMPORT_ERROR})"
        )
    client = redis.Redis(
        host=host,
        port=port,
        username=username or None,
        password=password or None,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        retry_on_timeout=False,
    )
    where = format_address(host, port)
    try:
        client.ping()
    except redis.AuthenticationError as error:
        raise ConnectionFailed(f"{where} refused the login as {username or 'default'}: {error}") from None
    except redis.ResponseError as error:
        # NOAUTH / WRONGPASS arrive as ResponseError from some servers and redis-py versions
        raise ConnectionFailed(f"{where} refused the connection: {error}") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
        raise ConnectionFailed(f"{where} is unreachable: {error}") from None
    return client


def error_text(error: BaseException) -> str:
    """The server's or the socket's message, on one line."""
    return " ".join(str(error).split()) or type(error).__name__
