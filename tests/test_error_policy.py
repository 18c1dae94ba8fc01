"""One error policy: every bad argument or setting is the library's typed error, one TLS setting
reaches every request and download, the same refused certificate is the same error everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiodirac import (
    AsyncDirac,
    ConfigurationError,
    DownloadConfig,
    Downloader,
    InvalidArgumentError,
    RateLimiter,
    RetryPolicy,
)
from aiodirac.testing import MemoryBackend


@pytest.mark.parametrize(
    "make",
    [
        lambda: DownloadConfig(max_concurrency=0),
        lambda: DownloadConfig(chunk_size=1),
        lambda: DownloadConfig(processes=-1),
        lambda: RetryPolicy(deadline=-1),
        lambda: RetryPolicy(multiplier=0.5),
        lambda: RetryPolicy(max_attempts=0),
        lambda: RateLimiter(0),
        lambda: RateLimiter(1, burst=0),
    ],
)
def test_bad_settings_are_configuration_errors(make: object) -> None:
    with pytest.raises(ConfigurationError):
        make()  # type: ignore[operator]


async def test_a_bad_job_id_is_the_same_error_for_the_downloader(tmp_path: Path) -> None:
    async with Downloader(MemoryBackend()) as dl:
        with pytest.raises(InvalidArgumentError, match="positive integers"):
            await dl.download([0], tmp_path)
    async with AsyncDirac(MemoryBackend()) as dirac:
        with pytest.raises(InvalidArgumentError):
            await dirac.download([0], tmp_path)


def test_the_client_tls_setting_reaches_the_downloads(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    assert AsyncDirac(MemoryBackend(), verify=str(ca))._download_config.verify == str(ca)
    assert AsyncDirac(MemoryBackend(), verify=False)._download_config.verify is False
    # Given once in the download settings only, it stays there.
    given = DownloadConfig(verify=str(ca))
    assert AsyncDirac(MemoryBackend(), download_config=given)._download_config.verify == str(ca)
    with pytest.raises(ConfigurationError, match="disagree"):
        AsyncDirac(MemoryBackend(), verify=str(ca), download_config=DownloadConfig(verify=False))


def test_errors_cross_process_boundaries_whole() -> None:
    # A download helper process hands its errors back pickled: type, hints and attributes stay.
    import pickle

    from aiodirac import SandboxError, UnsafeValueError

    cert = ConfigurationError("untrusted").with_hints(python="verify=...", cli="--ca-bundle")
    back = pickle.loads(pickle.dumps(cert))
    assert type(back) is ConfigurationError
    assert back.explain("cli") == "untrusted: --ca-bundle"
    assert back.explain("python") == "untrusted: verify=..."
    sandbox = pickle.loads(pickle.dumps(SandboxError("cut", job_id=7)))
    assert (type(sandbox), sandbox.job_id, str(sandbox)) == (SandboxError, 7, "cut")
    value = pickle.loads(
        pickle.dumps(UnsafeValueError("bad", attribute="JobName", value="a;b", character=";"))
    )
    assert (value.attribute, value.value, value.character) == ("JobName", "a;b", ";")


async def test_a_given_diracx_backends_ca_verifies_the_downloads_too(tmp_path: Path) -> None:
    import trustme

    from aiodirac.backends.diracx import DiracXBackend

    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    backend = DiracXBackend("https://127.0.0.1:9", token="not-a-real-token", verify=str(ca))
    async with AsyncDirac(backend) as dirac:
        assert dirac._download_config.verify == str(ca)
