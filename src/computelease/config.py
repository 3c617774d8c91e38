"""Settings read from the environment (prefix ``COMPUTELEASE_``) or a ``.env`` file."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMPUTELEASE_", env_file=".env", extra="ignore")

    # The embedded default: one SQLite file in the working folder, so `make run` needs no server.
    database_url: str = Field(default_factory=lambda: f"sqlite:///{Path.cwd() / 'computelease.db'}")
    # Signs session cookies. Unset, a random key is kept in `secret_key_file` so sessions survive restarts
    # without any key ever being committed.
    secret_key: str | None = None
    secret_key_file: Path = Path(".computelease-secret")
    # Set when the site is served over HTTPS, so cookies are never sent in clear text.
    secure_cookies: bool = False
    session_max_age_s: int = 8 * 3600
    default_locale: str = "zh_CN"
    # Allocation policy: nodes kept free per (site, fabric) for healing, as a count or a fraction of the
    # fabric's allocatable nodes (the larger wins), and the cleaning gap between two tenants of a node.
    spare_nodes_per_fabric: int = Field(default=0, ge=0)
    spare_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)
    cleaning_gap_hours: float = Field(default=4.0, ge=0.0)
    # The issuing entity's code: the prefix of invoice numbers (CL-2026-000123), one series per code.
    billing_entity: str = Field(default="CL", pattern=r"^[A-Z][A-Z0-9]{0,9}$")
    sql_echo: bool = False

    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.secret_key_file
        if path.exists():
            return path.read_text().strip()
        key = secrets.token_urlsafe(48)
        path.write_text(key + "\n")
        path.chmod(0o600)
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
