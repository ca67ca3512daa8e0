"""Run configuration: target URL, auth and timeouts, from flags, then environment, then `.env`.

Secrets are held in :class:`Secret`, whose ``repr`` and ``str`` never show the value.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

ENV_URL = "QUILT_BASE_URL"
ENV_API_KEY = "QUILT_API_KEY"
ENV_JWT = "QUILT_JWT"
ENV_API_KEY_2 = "QUILT_API_KEY_2"


# Shorter credentials cannot be scrubbed from evidence without mangling ordinary text.
MIN_SECRET_LEN = 8


class ConfigError(ValueError):
    """A configuration problem the user can fix; its message is one sentence."""


class Secret:
    """A credential. Its value is only reachable through :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class Config:
    """Everything a run needs to reach its target. ``base_url`` None means: start the reference."""

    base_url: str | None = None
    api_key: Secret | None = None
    jwt: Secret | None = None
    api_key_2: Secret | None = None  # a second tenant's key, for isolation checks
    report_dir: Path | None = None
    run_id: str = field(default_factory=lambda: new_run_id())
    retries: int = 2
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def auth_method(self) -> str:
        """The tenant auth the client sends: a JWT wins over an API key, as in quiltc."""
        if self.jwt:
            return "bearer-jwt"
        if self.api_key:
            return "x-api-key"
        return "none"

    def tenant_secret(self) -> Secret | None:
        return self.jwt or self.api_key


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, lower-case run id usable inside resource names: ``20261203-161300-ab12cd``."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _validate_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"target URL {url!r} is not an http(s) URL with a host")
    if parts.query or parts.fragment:
        raise ConfigError(f"target URL {url!r} must not carry a query or fragment")
    return url.rstrip("/")


def resolve(
    *,
    url: str | None = None,
    api_key: str | None = None,
    jwt: str | None = None,
    api_key_2: str | None = None,
    report_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    dotenv_path: str | os.PathLike[str] | None = ".env",
    run_id: str | None = None,
) -> Config:
    """Build a :class:`Config` with precedence flag > environment > ``.env`` file.

    Empty strings count as unset at every level. ``dotenv_path`` None skips the file.
    """
    environ = os.environ if environ is None else environ
    dotenv: dict[str, str | None] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        dotenv = dict(dotenv_values(dotenv_path))
    sources: dict[str, str] = {}

    def pick(name: str, flag: str | None, env_name: str) -> str | None:
        for source, value in (("flag", flag), ("environment", environ.get(env_name)),
                              (".env", dotenv.get(env_name))):
            if value:
                sources[name] = source
                return value
        return None

    base_url = pick("base_url", url, ENV_URL)
    key = pick("api_key", api_key, ENV_API_KEY)
    token = pick("jwt", jwt, ENV_JWT)
    key_2 = pick("api_key_2", api_key_2, ENV_API_KEY_2)
    if base_url is not None:
        base_url = _validate_url(base_url)
        if not key and not token:
            raise ConfigError(
                f"a target URL is set but no credential: give --api-key (pytest: "
                f"--quilt-api-key) or {ENV_API_KEY}, or a JWT via --jwt or {ENV_JWT}"
            )
    for label, value in (("API key", key), ("JWT", token), ("second tenant API key", key_2)):
        if value and len(value) < MIN_SECRET_LEN:
            raise ConfigError(
                f"the {label} is {len(value)} characters long; quilt-verify needs at least "
                f"{MIN_SECRET_LEN} to redact it safely from the evidence"
            )
    return Config(
        base_url=base_url,
        api_key=Secret(key) if key else None,
        jwt=Secret(token) if token else None,
        api_key_2=Secret(key_2) if key_2 else None,
        report_dir=Path(report_dir) if report_dir else None,
        run_id=run_id or new_run_id(),
        sources=sources,
    )
