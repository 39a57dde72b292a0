"""Reading a service's config file (contracts.ServiceConfig) and checking it names what the
service needs before anything starts: a bad file is one line on stderr, not a traceback."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from warroom.errors import InputError
from warroom.gym.live.contracts import EDGES, SERVICES, ServiceConfig

BAD_VERSION = "v2-bad"  # the faulty release a bad deploy ships
VERSIONS = ("v1", BAD_VERSION)
NEEDS_POSTGRES = ("orders", "worker")


class ConfigError(InputError):
    """A config file that is missing, not JSON, or not what its service needs."""


def load_config(path: Path) -> ServiceConfig:
    """The checked config in `path`."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror or err}") from err
    try:
        config = ServiceConfig.model_validate_json(text)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "file"
        raise ConfigError(f"config {path}: {where}: {first['msg']}") from err
    check_config(config, path)
    return config


def check_config(config: ServiceConfig, path: Path | str = "config") -> None:
    """Raise ConfigError unless `config` names a known service, version and all its callees."""
    if config.service not in SERVICES:
        raise ConfigError(f"{path}: unknown service {config.service!r} (one of {SERVICES})")
    if config.version not in VERSIONS:
        raise ConfigError(f"{path}: unknown version {config.version!r} (one of {VERSIONS})")
    missing = [callee for caller, callee in EDGES if caller == config.service]
    missing = [callee for callee in missing if callee not in config.peers]
    if missing:
        raise ConfigError(f"{path}: {config.service} needs peers for {', '.join(missing)}")
    for callee, address in config.peers.items():
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{path}: peer {callee}: {address!r} is not host:port")
    if config.service in NEEDS_POSTGRES and not config.postgres_dsn:
        raise ConfigError(f"{path}: {config.service} needs postgres_dsn")
    if config.service == "shipping" and not config.labels_dir:
        raise ConfigError(f"{path}: shipping needs labels_dir")
