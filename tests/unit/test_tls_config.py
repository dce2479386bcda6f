"""The certificate and key load once at start-up, and every way they can be wrong is one clear
message (a wrong path, a key of another certificate, a wrong passphrase), not a traceback."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from pydantic import SecretStr

from monitor.config import Settings
from monitor.tls import TLSConfigError, server_context, uvicorn_options


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    one, other = ca.issue_cert("127.0.0.1"), ca.issue_cert("localhost")
    out = {"cert": where / "cert.pem", "key": where / "key.pem", "other_key": where / "other.pem"}
    one.cert_chain_pems[0].write_to_path(out["cert"])
    one.private_key_pem.write_to_path(out["key"])
    other.private_key_pem.write_to_path(out["other_key"])
    key = serialization.load_pem_private_key(one.private_key_pem.bytes(), None)
    locked = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    out["locked_key"] = where / "locked.pem"
    out["locked_key"].write_bytes(locked)
    return out


def test_no_certificate_no_tls() -> None:
    assert server_context(Settings()) is None and uvicorn_options(Settings()) == {}


def test_a_matching_pair_loads_as_tls_1_2_or_newer(files: dict[str, Path]) -> None:
    settings = Settings(tls_cert_file=files["cert"], tls_key_file=files["key"])
    context = server_context(settings)
    assert context is not None and context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert uvicorn_options(settings)["ssl_certfile"] == str(files["cert"])


def test_a_passphrase_protected_key_loads_with_its_passphrase(files: dict[str, Path]) -> None:
    good = Settings(tls_cert_file=files["cert"], tls_key_file=files["locked_key"], tls_key_password=SecretStr("s3cret"))
    assert server_context(good) is not None
    bad = good.model_copy(update={"tls_key_password": SecretStr("wrong")})
    with pytest.raises(TLSConfigError, match="MONITOR_TLS_KEY_PASSWORD"):
        server_context(bad)


@pytest.mark.parametrize(
    ("cert", "key", "says"),
    [
        ("missing", "key", "does not exist"),
        ("cert", "missing", "does not exist"),
        ("cert", "other_key", "not a matching pair"),
        ("key", "key", "cannot use the certificate"),  # a key where the certificate goes
    ],
)
def test_each_wrong_file_is_named(files: dict[str, Path], tmp_path: Path, cert: str, key: str, says: str) -> None:
    paths = {**files, "missing": tmp_path / "nowhere.pem"}
    with pytest.raises(TLSConfigError, match=says):
        server_context(Settings(tls_cert_file=paths[cert], tls_key_file=paths[key]))


def test_an_empty_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MONITOR_TLS_CERT_FILE", "MONITOR_TLS_KEY_FILE", "MONITOR_TLS_KEY_PASSWORD"):
        monkeypatch.setenv(name, "")
    settings = Settings()
    assert (settings.tls_cert_file, settings.tls_key_file, settings.tls_key_password, settings.tls) == (
        None,
        None,
        None,
        False,
    )


def test_the_certificate_and_key_are_set_together(files: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="set together"):
        Settings(tls_cert_file=files["cert"])
    with pytest.raises(ValueError, match="set together"):
        Settings(tls_key_file=files["key"])
