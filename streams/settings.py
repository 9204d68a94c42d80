"""One settings module: environment variables with local defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

CCOMPAT_PATH = "/apis/ccompat/v7"
REPO_ROOT = Path(__file__).resolve().parent.parent


def _registry_api_url(url: str) -> str:
    # A bare host:port means our Apicurio: its Confluent-compatible API lives under CCOMPAT_PATH.
    # A URL with a path is taken as given (a Confluent registry, or the ccompat path spelled out).
    url = url.rstrip("/")
    if urlparse(url).path in ("", "/"):
        return url + CCOMPAT_PATH
    return url


@dataclass(frozen=True)
class Settings:
    bootstrap: str = field(default_factory=lambda: os.environ.get("OPENGYM_BOOTSTRAP", "127.0.0.1:9092"))
    schema_registry: str = field(
        default_factory=lambda: os.environ.get("OPENGYM_SCHEMA_REGISTRY", "http://127.0.0.1:8081")
    )
    topic_prefix: str = field(default_factory=lambda: os.environ.get("OPENGYM_TOPIC_PREFIX", ""))
    home: Path = field(
        default_factory=lambda: Path(
            os.environ.get("OPENGYM_HOME", str(Path.home() / ".cache" / "opengym"))
        )
    )
    schemas_dir: Path = REPO_ROOT / "schemas"

    @property
    def registry_url(self) -> str:
        """The Confluent-compatible API base URL, as confluent-kafka's clients want it."""
        return _registry_api_url(self.schema_registry)

    @property
    def registry_base(self) -> str:
        parsed = urlparse(self.schema_registry.rstrip("/"))
        return f"{parsed.scheme}://{parsed.netloc}"


def get_settings() -> Settings:
    return Settings()
