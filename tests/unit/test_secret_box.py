"""Receiver secrets at rest: sealed, opened, rotated to a new key; the key file."""

from __future__ import annotations

import stat

import pytest
from cryptography.fernet import Fernet

from monitor.config import Settings
from monitor.secret_box import PREFIX, SecretBox, SecretUnavailable, load_box


def test_sealed_values_open_and_hide_the_plaintext() -> None:
    box = SecretBox([Fernet.generate_key()])
    sealed = box.seal("whsec_plain")
    assert sealed.startswith(PREFIX) and "whsec_plain" not in sealed
    assert box.open(sealed) == "whsec_plain"
    assert box.open("written before encryption") == "written before encryption"
    assert box.open_headers(box.seal_headers({"Authorization": "Bearer t"})) == {"Authorization": "Bearer t"}


def test_rotation_moves_every_value_to_the_first_key() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    stored = [SecretBox([old]).seal("s1"), "plain from before"]
    both = SecretBox([new, old])
    rotated = [both.rotate(v) for v in stored]
    only_new = SecretBox([new])
    assert [only_new.open(v) for v in rotated] == ["s1", "plain from before"]
    with pytest.raises(SecretUnavailable, match="MONITOR_SECRET_KEYS"):
        SecretBox([old]).open(rotated[0])


def test_the_key_file_is_made_once_private_and_reused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data")
    sealed = load_box(settings).seal("x")
    key_file = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_box(settings).open(sealed) == "x"


def test_keys_from_the_settings_and_a_bad_one_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    k1, k2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = SecretBox([k2.encode()]).seal("y")
    assert load_box(Settings(data_dir=tmp_path, secret_keys=f"{k1}, {k2}")).open(sealed) == "y"
    assert not (tmp_path / "secret.key").exists()
    with pytest.raises(ValueError, match="MONITOR_SECRET_KEYS"):
        load_box(Settings(data_dir=tmp_path, secret_keys="not-a-key"))
    assert k1 not in repr(Settings(data_dir=tmp_path, secret_keys=k1))
