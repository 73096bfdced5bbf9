"""Connecting to NATS as ``[sink.nats]`` says, and the JetStream stream.

Secrets are read from files only (a password, a ``.creds`` file, an nkey
seed, a TLS key); the configured URL holds no password
(:class:`collectbus.config.NatsSinkConfig` refuses one), and every server
named in a log line goes through :func:`mask_servers`. nats-py is imported
here, when a connection is made, never by the CLI's start-up.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collectbus.config import NatsSinkConfig, nats_servers
from collectbus.errors import ConfigError

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

#: How long one connection attempt may take.
CONNECT_TIMEOUT_S = 2.0


def mask_servers(url: str) -> str:
    """The servers of ``url`` with any password replaced by ``***``."""
    return re.sub(r"://([^:/@,]*):[^@,]*@", r"://\1:***@", url)


def _password(config: NatsSinkConfig) -> str | None:
    if config.password_file is None:
        return None
    try:
        return Path(config.password_file).read_text().strip()
    except OSError as err:
        raise ConfigError(
            f"sink.nats.password_file: cannot read {config.password_file}: {err.strerror}"
        ) from err


def connect_options(config: NatsSinkConfig, *, name: str) -> dict[str, Any]:
    """The keyword arguments of ``nats.connect`` (without callbacks)."""
    options: dict[str, Any] = {
        "servers": nats_servers(config.url),
        "name": name,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1,
    }
    password = _password(config)
    if password is not None:
        from urllib.parse import urlsplit

        user = next(
            (urlsplit(s).username for s in options["servers"] if urlsplit(s).username), None
        )
        if user is None:
            raise ConfigError("sink.nats.password_file: the URL names no user (nats://user@host)")
        options.update(user=user, password=password)
    if config.credentials_file:
        options["user_credentials"] = config.credentials_file
    if config.nkey_seed_file:
        options["nkeys_seed"] = config.nkey_seed_file
    if config.tls_ca_file or config.tls_cert_file:
        import ssl

        context = ssl.create_default_context(cafile=config.tls_ca_file)
        if config.tls_cert_file and config.tls_key_file:
            context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
        options["tls"] = context
    return options


async def ensure_stream(js: JetStreamContext, config: NatsSinkConfig) -> bool:
    """Make the stream over ``<subject_prefix>.>`` unless it exists; True if made."""
    from nats.js.api import StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(config.stream)
        return False
    except NotFoundError:
        pass
    await js.add_stream(
        StreamConfig(
            name=config.stream,
            subjects=[f"{config.subject_prefix}.>"],
            storage=StorageType.FILE,
        )
    )
    return True


async def ensure_dead_letter_stream(js: JetStreamContext, config: NatsSinkConfig) -> None:
    """The stream that keeps dead letters, ``<stream>_DEAD`` over ``<dead_letter_prefix>.>``."""
    from nats.js.api import StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    name = f"{config.stream}_DEAD"
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=name,
                subjects=[f"{config.dead_letter_prefix}.>"],
                storage=StorageType.FILE,
            )
        )


async def connect(config: NatsSinkConfig, *, name: str, **callbacks: Any) -> Client:
    """A connected client (raises what nats-py raises when no server answers)."""
    import nats

    return await nats.connect(**connect_options(config, name=name), **callbacks)
