from __future__ import annotations

from pathlib import Path

import pytest

from aiodirac import ConfigurationError
from aiodirac._config import choose_backend, load_settings


def test_default_is_local() -> None:
    choice = choose_backend(environ={})
    assert choice.kind == "local"


def test_diracx_url_selects_diracx() -> None:
    choice = choose_backend(environ={"DIRACX_URL": "https://dx.example"})
    assert (choice.kind, choice.url) == ("diracx", "https://dx.example")


def test_env_override_beats_diracx_url() -> None:
    env = {"DIRACX_URL": "https://dx.example", "AIODIRAC_BACKEND": "local"}
    assert choose_backend(environ=env).kind == "local"


def test_explicit_argument_beats_environment() -> None:
    env = {"AIODIRAC_BACKEND": "local"}
    assert choose_backend("diracx", url="https://x", environ=env).kind == "diracx"
    assert choose_backend(url="https://x", environ=env).kind == "diracx"


def test_unknown_backend_name_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="'local' or 'diracx'"):
        choose_backend(environ={"AIODIRAC_BACKEND": "grid"})


def test_diracx_without_url_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="DIRACX_URL"):
        choose_backend("diracx", environ={})


def test_settings_file_names_a_server(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[diracx]\nurl = "https://from-file"\n[local]\nhome = "/srv/x"\n')
    env = {"AIODIRAC_CONFIG": str(cfg)}
    assert load_settings(env).local_home == "/srv/x"
    choice = choose_backend(environ=env)
    assert (choice.kind, choice.url) == ("diracx", "https://from-file")


def test_ca_path_from_the_environment_or_the_settings_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[diracx]\nurl = "https://from-file"\nca_path = "/etc/grid-security/certificates"\n'
    )
    env = {"AIODIRAC_CONFIG": str(cfg)}
    assert choose_backend(environ=env).ca_path == "/etc/grid-security/certificates"
    # DIRACX_CA_PATH, as DiracX's own client reads it, wins
    env["DIRACX_CA_PATH"] = "/tmp/ca.pem"
    assert choose_backend(environ=env).ca_path == "/tmp/ca.pem"
    assert choose_backend(environ={"DIRACX_URL": "https://x"}).ca_path is None


def test_settings_file_backend_key_wins_over_its_url(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('backend = "local"\n[diracx]\nurl = "https://from-file"\n')
    assert choose_backend(environ={"AIODIRAC_CONFIG": str(cfg)}).kind == "local"


def test_broken_settings_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("backend = [")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings({"AIODIRAC_CONFIG": str(cfg)})
