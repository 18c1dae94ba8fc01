"""TLS verification settings as users give them, turned into what httpx takes.

Usage: ``httpx.AsyncClient(verify=ssl_verify("/etc/grid-security/certificates"))``
"""

from __future__ import annotations

import os
import ssl

from aiodirac._exceptions import ConfigurationError


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
