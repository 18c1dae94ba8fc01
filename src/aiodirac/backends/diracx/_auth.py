"""DiracX bearer tokens: an explicit token, a token provider, or DiracX's own credentials file.

The credentials file is the one ``dirac login`` writes (``DIRACX_CREDENTIALS_PATH``, default
``~/.cache/diracx/credentials.json``): JSON ``{"access_token", "refresh_token", "expires_on"}``
with ``expires_on`` in epoch seconds (DiracX's ``diracx.core.utils.serialize_credentials``).

A token that is about to expire is refreshed with its refresh token (``POST /api/auth/token``,
``grant_type=refresh_token``, client ``myDIRACClientID`` as DiracX's own client uses), once for
all concurrent requests: DiracX rotates refresh tokens and treats the reuse of a spent one as an
attack that revokes every token of the user, so two concurrent refreshes must never happen. The
file is re-read first (another process may have refreshed it), and written back atomically
(temporary file + ``os.replace``, mode 0600). File I/O runs in worker threads.

Tokens never appear in logs, reprs or exception messages.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread
import httpx

from aiodirac._exceptions import AuthenticationError, ConfigurationError

from ._errors import LOGIN_HINTS, network_error, server_detail
from ._shapes import read_capped

__all__ = [
    "DEFAULT_CLIENT_ID",
    "TokenManager",
    "default_credentials_path",
]

logger = logging.getLogger("aiodirac.diracx")

#: The OAuth client ID of DiracX's own client (``diracx.client`` patches: ``myDIRACClientID``).
DEFAULT_CLIENT_ID = "myDIRACClientID"

#: Refresh when the access token has less than this many seconds left.
DEFAULT_REFRESH_MARGIN = 60.0

TokenProvider = Callable[[], Awaitable[str]]


def default_credentials_path() -> Path:
    """``DIRACX_CREDENTIALS_PATH``, else DiracX's default ``~/.cache/diracx/credentials.json``.

    Usage: ``default_credentials_path()``
    """
    configured = os.environ.get("DIRACX_CREDENTIALS_PATH")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "diracx" / "credentials.json"


@dataclass(frozen=True, slots=True)
class _Credentials:
    access_token: str
    refresh_token: str | None
    expires_on: float

    def __repr__(self) -> str:
        # never show the tokens
        return f"_Credentials(expires_on={self.expires_on:.0f})"


def _read_file(path: Path) -> _Credentials:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise AuthenticationError(f"no DiracX credentials file at {path}").with_hints(
            **LOGIN_HINTS
        ) from exc
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the DiracX credentials file {path}: {exc.strerror}"
        ) from exc
    try:
        data = json.loads(raw)
        access = data["access_token"]
        expires_on = float(data["expires_on"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise AuthenticationError(
            f"the DiracX credentials file {path} is not valid JSON with access_token and expires_on"
        ).with_hints(**LOGIN_HINTS) from exc
    if not isinstance(access, str) or not access:
        raise AuthenticationError(f"the DiracX credentials file {path} has no access token")
    refresh = data.get("refresh_token")
    return _Credentials(
        access, refresh if isinstance(refresh, str) and refresh else None, expires_on
    )


def _write_file(path: Path, credentials: _Credentials) -> None:
    payload = {
        "access_token": credentials.access_token,
        "refresh_token": credentials.refresh_token,
        "expires_on": int(credentials.expires_on),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".credentials-", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class TokenManager:
    """Hands out a valid access token; refreshes it once for all concurrent callers.

    One source, in this order of precedence: ``token`` (used as is, never refreshed),
    ``provider`` (awaited for each new token) or ``credentials_path`` (DiracX's credentials file,
    refreshed and written back; default ``DIRACX_CREDENTIALS_PATH`` or DiracX's default path).

    Usage::

        tokens = TokenManager(credentials_path=path, token_url=url + "/api/auth/token")
        bearer = await tokens.get(client)
    """

    def __init__(
        self,
        *,
        token_url: str,
        token: str | None = None,
        provider: TokenProvider | None = None,
        credentials_path: str | os.PathLike[str] | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
    ) -> None:
        if token is not None and provider is not None:
            raise ConfigurationError("give DiracXBackend a token or a token_provider, not both")
        self._token_url = token_url
        self._static = token
        self._provider = provider
        # an explicit token or provider wins over any credentials file
        self._path = (
            None
            if token is not None or provider is not None
            else Path(credentials_path).expanduser()
            if credentials_path is not None
            else default_credentials_path()
        )
        self._client_id = client_id
        self._margin = refresh_margin
        self._current: _Credentials | None = None
        self._lock = anyio.Lock()
        self._rejected: set[str] = set()
        self.refreshes = 0

    @property
    def source(self) -> str:
        """Where tokens come from, for reprs and logs (no secret)."""
        if self._static is not None:
            return "token"
        if self._provider is not None:
            return "token provider"
        return f"credentials file {self._path}"

    def _fresh(self, credentials: _Credentials | None) -> bool:
        return credentials is not None and credentials.expires_on - time.time() > self._margin

    async def get(self, client: httpx.AsyncClient) -> str:
        """A token valid for at least the refresh margin (refreshing it if needed).

        Raises:
            AuthenticationError: no usable token and no way to get one.
        """
        if self._static is not None:
            return self._static
        current = self._current
        if self._provider is None and current is not None and self._fresh(current):
            return current.access_token
        async with self._lock:
            if self._provider is not None:
                if self._current is None:
                    self._current = _Credentials(await self._provider(), None, float("inf"))
                return self._current.access_token
            # another task may have refreshed while this one waited for the lock
            if self._current is not None and self._fresh(self._current):
                return self._current.access_token
            return (await self._renew_from_file(client)).access_token

    async def invalidate(self, rejected: str) -> bool:
        """Forget ``rejected`` after the server answered 401 with it.

        Returns:
            Whether another attempt can get a different token (a provider or a refreshable file).
        """
        if self._static is not None:
            return False
        async with self._lock:
            if self._current is not None and self._current.access_token == rejected:
                if self._provider is not None:
                    self._current = None
                else:
                    # keep the refresh token, force a refresh on the next get()
                    self._rejected.add(rejected)
                    self._current = _Credentials(rejected, self._current.refresh_token, 0.0)
            if self._provider is not None:
                return True
            return self._current is None or self._current.refresh_token is not None

    async def _renew_from_file(self, client: httpx.AsyncClient) -> _Credentials:
        assert self._path is not None
        path = self._path
        on_disk = await anyio.to_thread.run_sync(_read_file, path)
        known = self._current
        # another process may have refreshed the file; a token the server rejected is not reused
        if self._fresh(on_disk) and on_disk.access_token not in self._rejected:
            self._current = on_disk
            return on_disk
        refresh = on_disk.refresh_token or (known.refresh_token if known else None)
        if refresh is None:
            raise AuthenticationError(
                f"the DiracX access token in {path} has expired and there is no refresh token"
            ).with_hints(**LOGIN_HINTS)
        renewed = await self._refresh(client, refresh)
        self._current = renewed
        await anyio.to_thread.run_sync(_write_file, path, renewed)
        logger.debug("DiracX access token refreshed; credentials written back to %s", path)
        return renewed

    async def _refresh(self, client: httpx.AsyncClient, refresh_token: str) -> _Credentials:
        request = client.build_request(
            "POST",
            self._token_url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": self._client_id,
            },
        )
        try:
            response = await read_capped(
                await client.send(request, stream=True), "the token refresh"
            )
        except httpx.HTTPError as exc:
            raise network_error(
                exc, action="refresh the access token", url=self._token_url
            ) from exc
        if response.status_code != 200:
            raise AuthenticationError(
                "DiracX refused to refresh the access token "
                f"(HTTP {response.status_code}: {server_detail(response)})",
                status_code=response.status_code,
            ).with_hints(**LOGIN_HINTS)
        try:
            body = response.json()
            access = body["access_token"]
            expires_in = float(body["expires_in"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthenticationError(
                "DiracX answered the token refresh without an access token"
            ) from exc
        # tokens from the legacy exchange are not rotated: the answer has no new refresh token
        new_refresh = body.get("refresh_token") or refresh_token
        self.refreshes += 1
        return _Credentials(access, new_refresh, time.time() + expires_in)

    def __repr__(self) -> str:
        return f"<TokenManager source={self.source!r} refreshes={self.refreshes}>"
