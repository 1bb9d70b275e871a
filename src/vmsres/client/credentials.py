"""Where the client finds its AccessKey and SecretKey.

The order and the file formats follow the official ``volcengine`` SDK (base/Service.py), so a
machine set up for it works unchanged: explicit arguments, then VOLC_ACCESSKEY and VOLC_SECRETKEY
(only when both are set), then ``~/.volc/credentials`` (INI, section ``[default]`` with
``access_key_id`` and ``secret_access_key``), then ``~/.volc/config`` (JSON ``{"ak", "sk"}``, read
only when the INI file does not exist).
"""

from __future__ import annotations

import configparser
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vmsres.client.errors import CredentialsNotFound

ACCESS_KEY_ENV = "VOLC_ACCESSKEY"
SECRET_KEY_ENV = "VOLC_SECRETKEY"


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    # Where they came from, for messages: "arguments", "environment" or a file path.
    source: str = "arguments"


def _home(environ: Mapping[str, str]) -> Path | None:
    home = environ.get("HOME")
    if home:
        return Path(home)
    try:
        return Path.home()
    except RuntimeError:
        return None


def _from_ini(path: Path) -> tuple[str, str] | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None
    access_key = parser.get("default", "access_key_id", fallback="")
    secret_key = parser.get("default", "secret_access_key", fallback="")
    return (access_key, secret_key) if access_key and secret_key else None


def _from_json(path: Path) -> tuple[str, str] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    access_key, secret_key = data.get("ak"), data.get("sk")
    if isinstance(access_key, str) and isinstance(secret_key, str) and access_key and secret_key:
        return access_key, secret_key
    return None


def resolve_credentials(
    access_key: str | None = None,
    secret_key: str | None = None,
    *,
    session_token: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    env = os.environ if environ is None else environ
    if access_key or secret_key:
        if not (access_key and secret_key):
            raise CredentialsNotFound("give both an access key and a secret key, or neither")
        return Credentials(access_key, secret_key, session_token)
    env_ak, env_sk = env.get(ACCESS_KEY_ENV), env.get(SECRET_KEY_ENV)
    if env_ak and env_sk:
        return Credentials(env_ak, env_sk, session_token, "environment")
    home = _home(env)
    if home is not None:
        ini, config = home / ".volc" / "credentials", home / ".volc" / "config"
        if ini.is_file():
            found, source = _from_ini(ini), ini
        else:
            found, source = (_from_json(config), config) if config.is_file() else (None, config)
        if found:
            return Credentials(found[0], found[1], session_token, str(source))
    raise CredentialsNotFound(
        f"no credentials: pass an access key and a secret key, set {ACCESS_KEY_ENV} and "
        f"{SECRET_KEY_ENV}, or write ~/.volc/credentials"
    )
