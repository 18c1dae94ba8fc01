"""Configuration: which backend a client uses, and the settings file.

The rule, from strongest to weakest:

1. an explicit ``backend=`` (a :class:`~aiodirac.Backend` or ``"local"``/``"diracx"``) or ``url=``;
2. the ``AIODIRAC_BACKEND`` environment variable (``local`` or ``diracx``);
3. ``DIRACX_URL`` in the environment (set for every DiracX user), or ``[diracx] url`` in the
   settings file: DiracX;
4. otherwise the embedded local backend.

The settings file is TOML, at ``$AIODIRAC_CONFIG`` or ``$XDG_CONFIG_HOME/aiodirac/config.toml``
(``~/.config/aiodirac/config.toml``)::

    backend = "diracx"            # or "local"
    [diracx]
    url = "https://diracx.example.org"
    credentials_path = "~/.cache/diracx/credentials.json"
    ca_path = "/etc/grid-security/certificates"   # CA certificates (file or folder); DIRACX_CA_PATH
    [local]
    home = "~/aiodirac-state"
    [limits]                      # every request a client sends (see aiodirac.Limits)
    rate = 20                     # requests per second in the long run
    burst = 10                    # requests back to back after a quiet period
    max_in_flight = 8             # requests in progress at once
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiodirac._engine._gate import Limits

from ._exceptions import ConfigurationError

__all__ = ["BackendChoice", "Settings", "choose_backend", "default_limits", "load_settings"]

logger = logging.getLogger("aiodirac")

BackendKind = Literal["local", "diracx"]


@dataclass(frozen=True, slots=True)
class Settings:
    """The settings file's content (all optional).

    Usage: ``settings = load_settings()``
    """

    backend: BackendKind | None = None
    diracx_url: str | None = None
    credentials_path: str | None = None
    ca_path: str | None = None
    local_home: str | None = None
    rate: float | None = None
    burst: int | None = None
    max_in_flight: int | None = None
    path: str | None = None


@dataclass(frozen=True, slots=True)
class BackendChoice:
    """Which backend to build and why, for the one log line that says so.

    Usage: ``choice = choose_backend(); print(choice.kind, choice.reason)``
    """

    kind: BackendKind
    reason: str
    url: str | None = None
    credentials_path: str | None = None
    local_home: str | None = None
    #: the CA certificates (file or folder) that sign the DiracX server's and its sandbox
    #: store's certificates, as DiracX's own client takes them (``DIRACX_CA_PATH``)
    ca_path: str | None = None


def _settings_path(environ: Mapping[str, str]) -> Path:
    explicit = environ.get("AIODIRAC_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "aiodirac" / "config.toml"


def _kind(value: object, where: str) -> BackendKind:
    if value == "local" or value == "diracx":
        return value
    raise ConfigurationError(f"{where}: backend must be 'local' or 'diracx', not {value!r}")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings file, if there is one.

    Raises:
        ConfigurationError: the file exists but is not valid TOML or has wrong values.

    Usage: ``load_settings().diracx_url``
    """
    env = os.environ if environ is None else environ
    path = _settings_path(env)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Settings()
    except OSError as exc:
        raise ConfigurationError(f"cannot read settings file {path}: {exc}") from exc
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"settings file {path} is not valid TOML: {exc}") from exc
    diracx = data.get("diracx", {})
    local = data.get("local", {})
    limits = data.get("limits", {})
    if not all(isinstance(table, dict) for table in (diracx, local, limits)):
        raise ConfigurationError(
            f"settings file {path}: [diracx], [local] and [limits] must be tables"
        )
    unknown = sorted(set(limits) - {"rate", "burst", "max_in_flight"})
    if unknown:
        raise ConfigurationError(
            f"settings file {path}: [limits] has no setting {unknown[0]!r} "
            "(known: rate, burst, max_in_flight)"
        )
    backend = data.get("backend")
    return Settings(
        backend=None if backend is None else _kind(backend, str(path)),
        diracx_url=_opt_str(diracx.get("url"), path, "diracx.url"),
        credentials_path=_opt_str(diracx.get("credentials_path"), path, "diracx.credentials_path"),
        ca_path=_opt_str(diracx.get("ca_path"), path, "diracx.ca_path"),
        local_home=_opt_str(local.get("home"), path, "local.home"),
        rate=_opt_number(limits.get("rate"), path, "limits.rate", integer=False),
        burst=_opt_number(limits.get("burst"), path, "limits.burst", integer=True),
        max_in_flight=_opt_number(
            limits.get("max_in_flight"), path, "limits.max_in_flight", integer=True
        ),
        path=str(path),
    )


def _opt_number(value: object, path: Path, key: str, *, integer: bool) -> Any:
    if value is None:
        return None
    good = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (isinstance(value, int) or not integer)
        and value > 0
    )
    if not good:
        what = "a positive integer" if integer else "a positive number"
        raise ConfigurationError(f"settings file {path}: {key} must be {what}, not {value!r}")
    return value


def default_limits(
    settings: Settings | None = None,
    *,
    rate: float | None = None,
    max_in_flight: int | None = None,
) -> Limits:
    """The request limits of a client given none: the settings file's ``[limits]``, then
    :class:`~aiodirac.Limits`' defaults; ``rate`` and ``max_in_flight`` (e.g. from command-line
    options) take precedence over both.

    Raises:
        ConfigurationError: a bad value in the settings file or in the arguments.

    Usage: ``default_limits(load_settings(), rate=5)``
    """
    s = settings if settings is not None else load_settings()
    base = Limits()
    return Limits(
        max_in_flight=max_in_flight or s.max_in_flight or base.max_in_flight,
        rate=rate or s.rate or base.rate,
        burst=s.burst or base.burst,
        retry=base.retry,
    )


def _opt_str(value: object, path: Path, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"settings file {path}: {key} must be a non-empty string")
    return os.path.expanduser(value)


def choose_backend(
    kind: str | None = None,
    *,
    url: str | None = None,
    environ: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> BackendChoice:
    """Decide which backend a client without an explicit one should use (see module docs).

    Raises:
        ConfigurationError: an unknown backend name, or DiracX chosen with no URL anywhere.

    Usage: ``choose_backend().kind`` -> ``'local'`` on a machine with no DiracX settings
    """
    env = os.environ if environ is None else environ
    conf = load_settings(env) if settings is None else settings
    env_url = env.get("DIRACX_URL") or None
    creds = env.get("DIRACX_CREDENTIALS_PATH") or conf.credentials_path
    home = env.get("AIODIRAC_HOME") or conf.local_home
    if kind is not None:
        chosen, reason = _kind(kind, "backend argument"), "chosen explicitly"
    elif url is not None:
        chosen, reason = "diracx", "a server URL was given"
    elif env.get("AIODIRAC_BACKEND"):
        chosen, reason = _kind(env["AIODIRAC_BACKEND"], "AIODIRAC_BACKEND"), "AIODIRAC_BACKEND"
    elif env_url:
        chosen, reason = "diracx", "DIRACX_URL is set"
    elif conf.backend is not None:
        chosen, reason = conf.backend, f"settings file {conf.path}"
    elif conf.diracx_url:
        chosen, reason = "diracx", f"settings file {conf.path} names a server"
    else:
        chosen, reason = "local", "no DiracX server configured"
    if chosen == "local":
        return BackendChoice("local", reason, local_home=home)
    server = url or env_url or conf.diracx_url
    if not server:
        raise ConfigurationError("the DiracX backend needs a server URL").with_hints(
            python="pass url=..., set DIRACX_URL, or put [diracx] url in the aiodirac settings "
            "file",
            cli="give --url URL, set DIRACX_URL, or put [diracx] url in the aiodirac settings file",
        )
    ca_path = env.get("DIRACX_CA_PATH") or conf.ca_path
    return BackendChoice("diracx", reason, url=server, credentials_path=creds, ca_path=ca_path)
