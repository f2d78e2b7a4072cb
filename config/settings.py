"""Settings, read once from the environment.

`make run` / `make test` write `var/onemap.env` (the private cluster's DATABASE_URL and a
generated SECRET_KEY, mode 0600, never in git). A variable set in the environment wins over
that file, so `DATABASE_URL=... make run` points the platform at another server.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / "var" / "onemap.env"


class SettingsError(RuntimeError):
    pass


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    return values


@dataclass(frozen=True)
class Settings:
    database_url: str
    secret_key: str
    data_dir: Path
    port: int

    @property
    def sqlalchemy_url(self) -> str:
        """The URL with the driver named: SQLAlchemy 2.1 would otherwise pick psycopg 3."""
        scheme, rest = self.database_url.split("://", 1)
        return f"postgresql+psycopg2://{rest}" if scheme == "postgresql" else self.database_url


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = {**read_env_file(), **(os.environ if environ is None else environ)}
    try:
        database_url = env["DATABASE_URL"]
    except KeyError:
        raise SettingsError(
            "DATABASE_URL is not set and var/onemap.env does not exist: run `make run` "
            "(it starts the private PostGIS cluster) or set DATABASE_URL") from None
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url[len("postgres://"):]
    return Settings(
        database_url=database_url,
        secret_key=env.get("SECRET_KEY", ""),
        data_dir=Path(env.get("ONEMAP_DATA_DIR", ROOT / "var" / "data")),
        port=int(env.get("PORT", "8000")),
    )
