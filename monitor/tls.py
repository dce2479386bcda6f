"""HTTPS for the API and the dashboard, from the certificate and key in the settings.

Both servers load the same files: uvicorn (the API) from their paths, werkzeug (the dashboard)
from the context built here. ``check`` loads them once at start-up, so a wrong path, a key that
does not match the certificate or a wrong passphrase is one clear line, not a worker's traceback.
"""

from __future__ import annotations

import ssl
from typing import Any

from monitor.config import Settings

# What a browser is told once it has reached the service over HTTPS: for a year, only HTTPS.
HSTS = {"Strict-Transport-Security": "max-age=31536000"}


class TLSConfigError(ValueError):
    pass


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The server side of TLS 1.2 or newer with the configured certificate; None without one."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    password = settings.tls_key_password.get_secret_value() if settings.tls_key_password else None
    try:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file, password)
    except FileNotFoundError as exc:
        raise TLSConfigError(
            f"TLS: {exc.filename} does not exist (MONITOR_TLS_CERT_FILE, MONITOR_TLS_KEY_FILE)"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise TLSConfigError(
            f"TLS: cannot use the certificate {settings.tls_cert_file} with the key {settings.tls_key_file} "
            f"(not PEM, not a matching pair, or a wrong MONITOR_TLS_KEY_PASSWORD): {exc}"
        ) from None
    return context


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's TLS options (none without a certificate)."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return {}
    password = settings.tls_key_password.get_secret_value() if settings.tls_key_password else None
    return {
        "ssl_certfile": str(settings.tls_cert_file),
        "ssl_keyfile": str(settings.tls_key_file),
        "ssl_keyfile_password": password,
    }


def scheme(settings: Settings) -> str:
    return "https" if settings.tls else "http"
