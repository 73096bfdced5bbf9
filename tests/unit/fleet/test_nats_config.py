"""``[sink.nats]``: checked at load, one line naming the key; secrets from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectbus.config import load_config
from collectbus.errors import ConfigError
from collectbus.fleet.connect import connect_options, mask_servers


def _load(tmp_path: Path, body: str) -> object:
    path = tmp_path / "c.toml"
    path.write_text(body)
    return load_config(path, env={})


def test_defaults_and_options(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    config = _load(
        tmp_path,
        f'[sink.nats]\nurl = "nats://agent@a:4222, nats://agent@b:4222"\n'
        f'password_file = "{secret}"\ncluster = "hpc1"\n',
    )
    nats = config.sink.nats  # type: ignore[attr-defined]
    assert nats.local_store is True
    assert nats.stream == "COLLECTBUS"
    options = connect_options(nats, name="x")
    assert options["servers"] == ["nats://agent@a:4222", "nats://agent@b:4222"]
    assert (options["user"], options["password"]) == ("agent", "s3cret")
    assert "s3cret" not in mask_servers(nats.url)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('url = "nats://u:pw@h:4222"', "sink.nats.url: a password in the URL"),
        ('url = "http://h"', "is not a NATS URL"),
        ('credentials_file = "/nonexistent/x.creds"', "sink.nats.credentials_file: /nonexistent"),
        ('cluster = "a.b"', "sink.nats.cluster"),
        ('subject_prefix = "a.>"', "sink.nats.subject_prefix"),
        ('dead_letter_prefix = "collectbus.dead"', "dead_letter_prefix must be outside"),
        ("bogus = 1", "sink.nats.bogus: unknown key"),
    ],
)
def test_refused_in_one_line(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f"[sink.nats]\n{body}\n")
    assert message in str(caught.value)
    assert "pw@" not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_one_identity_and_a_whole_tls_pair(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("x")
    b.write_text("y")
    with pytest.raises(ConfigError, match="credentials_file or nkey_seed_file, not both"):
        _load(tmp_path, f'[sink.nats]\ncredentials_file = "{a}"\nnkey_seed_file = "{b}"\n')
    with pytest.raises(ConfigError, match="tls_cert_file and tls_key_file go together"):
        _load(tmp_path, f'[sink.nats]\ntls_cert_file = "{a}"\n')


def test_publishing_only_is_refused_with_a_scheduler(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="scheduler listings are written to the local store"):
        _load(tmp_path, "[collectors.pbs]\nenabled = true\n[sink.nats]\nlocal_store = false\n")
