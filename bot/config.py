"""The service's configuration: one typed object from the environment (or .env).

Secrets come only from the environment. Command-line flags (--model, --db)
override the matching variables. Validation happens at start-up, with a
message that names the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine.backends import BACKENDS
from engine.forms import DEFAULT_FORM, FORM_IDS

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
DEFAULT_MODEL_POINTER = MODELS_DIR / "DEFAULT"  # holds the name of the shipped model's directory
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
ALLOWED_WORDS = {"backend": BACKENDS, "default_form": FORM_IDS, "log_level": LOG_LEVELS}  # Settings field -> its words


def default_model_dir() -> Path:
    """The model that ships with the project (named in models/DEFAULT)."""
    if DEFAULT_MODEL_POINTER.is_file():
        return MODELS_DIR / DEFAULT_MODEL_POINTER.read_text(encoding="utf-8").strip()
    return MODELS_DIR / "default"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    # Engine
    model: Path = Field(default_factory=default_model_dir, alias="THO_MODEL")
    backend: str = Field("hf", alias="THO_BACKEND")
    remote_urls: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="THO_REMOTE_URLS")
    vllm_kv_cache_bytes: int | None = Field(None, alias="THO_VLLM_KV_CACHE_BYTES")
    vllm_max_num_seqs: int | None = Field(None, alias="THO_VLLM_MAX_NUM_SEQS")
    vllm_dtype: str | None = Field(None, alias="THO_VLLM_DTYPE")
    torch_threads: int | None = Field(1, alias="THO_TORCH_THREADS", ge=1)  # hf backend; see engine/backends/hf.py
    model_watch_seconds: float = Field(10.0, alias="THO_MODEL_WATCH_SECONDS", ge=0)

    # Bot
    db: Path = Field(REPO_ROOT / "data" / "tho.db", alias="THO_DB")
    default_form: str = Field(DEFAULT_FORM, alias="THO_DEFAULT_FORM")
    poems_per_minute: int = Field(6, alias="THO_POEMS_PER_MINUTE", ge=1, le=600)
    admins: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="THO_ADMINS")
    # Cost bounds (issue 12): one user cannot hold the machine.
    poem_timeout_seconds: float = Field(60.0, alias="THO_POEM_TIMEOUT_SECONDS", gt=0, le=3600)
    max_work: int = Field(16, alias="THO_MAX_WORK", ge=1, le=512)  # candidates x beams x stanzas of one poem
    max_in_flight: int = Field(256, alias="THO_MAX_IN_FLIGHT", ge=1, le=100_000)  # poems accepted (waiting + writing)
    # Poems the engine writes at once; the others wait their turn within their deadline.
    # None: 16 on the CPU backend (its sweet spot, see Benchmark), 256 on vLLM.
    max_concurrent: int | None = Field(None, alias="THO_MAX_CONCURRENT", ge=1, le=100_000)
    console_pictures: Path = Field(Path("."), alias="THO_CONSOLE_PICTURES")  # where the console saves pictures
    stream: bool = Field(True, alias="THO_STREAM")  # show a poem line by line as it is written (0: all at once)
    log_level: str | None = Field(None, alias="THO_LOG_LEVEL")  # None: INFO for the bots, WARNING in the console

    # Telegram
    telegram_token: SecretStr | None = Field(None, alias="TELEGRAM_TOKEN")
    telegram_base_url: str = Field("https://api.telegram.org/bot", alias="TELEGRAM_BASE_URL")
    telegram_admin_chat: int | None = Field(None, alias="TELEGRAM_ADMIN_CHAT")
    telegram_webhook_url: str | None = Field(None, alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_port: int = Field(8443, alias="TELEGRAM_WEBHOOK_PORT")
    telegram_webhook_secret: SecretStr | None = Field(None, alias="TELEGRAM_WEBHOOK_SECRET")

    # Discord
    discord_token: SecretStr | None = Field(None, alias="DISCORD_TOKEN")
    # A Discord-compatible API and gateway elsewhere (a proxy; the tests' loopback server).
    discord_api_url: str | None = Field(None, alias="DISCORD_API_URL")
    discord_gateway_url: str | None = Field(None, alias="DISCORD_GATEWAY_URL")

    @field_validator("remote_urls", "admins", mode="before")
    @classmethod
    def _split_list(cls, value):
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("backend", "default_form", "log_level")
    @classmethod
    def _one_of(cls, value: str | None, info: ValidationInfo) -> str | None:
        """THO_BACKEND, THO_DEFAULT_FORM and THO_LOG_LEVEL take one of a few words; say which."""
        if value is None:
            return None
        allowed = ALLOWED_WORDS[info.field_name]
        value = value.upper() if info.field_name == "log_level" else value
        if value not in allowed:
            raise ValueError(f"{cls.model_fields[info.field_name].alias} must be one of {', '.join(allowed)}")
        return value

    @model_validator(mode="after")
    def _webhook_has_a_secret(self):
        # Without the secret anyone who finds the webhook URL can post updates as any user, admins too.
        if self.telegram_webhook_url and not (
            self.telegram_webhook_secret and self.telegram_webhook_secret.get_secret_value()
        ):
            raise ValueError(
                "TELEGRAM_WEBHOOK_SECRET must be set with TELEGRAM_WEBHOOK_URL: Telegram sends it with every "
                "update, and without it anyone who finds the URL can send updates as any user"
            )
        return self

    def engine_concurrency(self) -> int:
        if self.max_concurrent is not None:
            return self.max_concurrent
        return 16 if self.backend == "hf" else 256

    def secrets(self) -> list[str]:
        """Every value that must never reach a log: tokens, the webhook secret and path, the admin chat."""
        values: list[str] = []
        for secret in (self.telegram_token, self.discord_token, self.telegram_webhook_secret):
            if secret is not None and secret.get_secret_value():
                values.append(secret.get_secret_value())
        if self.telegram_webhook_url:
            path = urlsplit(self.telegram_webhook_url).path.strip("/")
            if path:
                values.append(path)
        if self.telegram_admin_chat is not None:
            values.append(str(self.telegram_admin_chat))
        return values

    def backend_options(self) -> dict:
        """Keyword arguments for engine.backends.create_backend."""
        if self.backend == "remote":
            return {"urls": self.remote_urls}
        if self.backend == "vllm":
            options = {
                "kv_cache_memory_bytes": self.vllm_kv_cache_bytes,
                "max_num_seqs": self.vllm_max_num_seqs,
                "dtype": self.vllm_dtype,
            }
            return {k: v for k, v in options.items() if v is not None}
        return {"threads": self.torch_threads}
