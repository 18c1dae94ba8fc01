"""TLS verification settings as users give them, turned into what httpx takes.

Usage: ``httpx.AsyncClient(verify=ssl_verify("/etc/grid-security/certificates"))``
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from types import MappingProxyType

from aiodirac._exceptions import ConfigurationError, reason_of

__all__ = ["CA_HINTS", "ssl_verify", "untrusted_certificate"]

#: What to do when a server's TLS certificate is not trusted, said for each interface.
CA_HINTS: Mapping[str, str] = MappingProxyType(
    {
        "python": "give the CA certificates that sign it with verify= (a file or a folder)",
        "cli": "give the CA certificates that sign it with --ca-bundle PATH (a file, or a folder "
        "such as /etc/grid-security/certificates), or once for all with ca_path under [diracx] "
        "in the aiodirac settings file (or DIRACX_CA_PATH)",
    }
)


def untrusted_certificate(exc: BaseException, what: str) -> ConfigurationError:
    """The one error for a TLS certificate that did not verify, on every path (API requests and
    sandbox transfers alike): no retry can help, the CA certificates have to change.

    ``what`` names the request (``"request to submit at https://..."``,
    ``"job 12's sandbox storage"``).

    Usage: ``raise untrusted_certificate(exc, "request to submit") from exc``
    """
    return ConfigurationError(
        f"{what}: the server's TLS certificate is not trusted: {reason_of(exc)}"
    ).with_hints(**CA_HINTS)


def ssl_verify(verify: bool | str) -> bool | ssl.SSLContext:
    """``True`` (the default CA store), ``False``, or a CA bundle file or folder (``capath``,
    e.g. a grid site's ``/etc/grid-security/certificates``) as an SSL context.

    Raises:
        ConfigurationError: the file or folder cannot be read as CA certificates.
    """
    if isinstance(verify, bool):
        return verify
    try:
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot use {verify!r} as CA certificates: {exc}") from exc
