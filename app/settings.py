"""Settings, read from the environment (prefix CROSSINTEL_) and injected into create_app()."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SIGNING_KEY = "crossintel-development-signing-key-change-me"
DEFAULT_AUDIT_KEY = "crossintel-development-audit-key-change-me"
# What may require a purpose of access (X-Purpose), see `purpose_required`.
PURPOSE_ACTIONS = (
    "record.search.selector",
    "record.search.person",
    "record.search.text",
    "record.read.granted",
    "record.read.own",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CROSSINTEL_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg://… ; unset: run the embedded PostgreSQL under data_dir",
    )
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"

    signing_key: SecretStr = SecretStr(DEFAULT_SIGNING_KEY)
    jwt_issuer: str = "crossintel"
    jwt_audience: str = "crossintel-api"
    access_token_ttl_seconds: int = Field(default=900, gt=0)
    refresh_token_ttl_seconds: int = Field(default=12 * 3600, gt=0)
    lockout_threshold: int = Field(default=5, gt=0)
    lockout_minutes: int = Field(default=15, gt=0)

    web_idle_minutes: int = Field(
        default=30, gt=0, description="minutes without a page request before a web sign-in ends"
    )
    web_session_hours: int = Field(
        default=12, gt=0, description="hours after which a web sign-in ends, active or not"
    )

    attachment_max_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    events_keepalive_seconds: float = Field(
        default=15, gt=0, description="seconds of silence before an event stream's keepalive"
    )

    review_hours_urgent: int = Field(default=24, gt=0)
    review_hours_high: int = Field(default=72, gt=0)
    review_hours_routine: int = Field(default=7 * 24, gt=0)

    audit_key: SecretStr = Field(
        default=SecretStr(DEFAULT_AUDIT_KEY),
        description="HMAC key sealing the audit chain; never change it once events exist",
    )
    audit_enabled: bool = Field(
        default=True, description="false only to measure the audit's cost; refused in production"
    )
    purpose_required: list[Literal[PURPOSE_ACTIONS]] = Field(  # type: ignore[valid-type]
        default=["record.search.selector", "record.search.person", "record.read.granted"],
        description="actions that need a purpose of access (X-Purpose)",
    )
    review_after_days: int = Field(default=3 * 365, gt=0, description="review_at after a change")
    retain_days: int = Field(default=5 * 365, gt=0, description="retain_until after filing")
    retention_interval_seconds: float = Field(
        default=3600, ge=0, description="how often the server purges due records; 0: never"
    )
    anomaly_peer_factor: float = Field(
        default=3.0, gt=1, description="flag reads and searches above this many times the median"
    )
    anomaly_min_events: int = Field(default=50, gt=0, description="below this, never flagged")
    anomaly_denial_burst: int = Field(default=5, gt=1, description="denials within 10 minutes")
    anomaly_timezone: str = "Europe/Paris"

    deconfliction_common_holders: int = Field(
        default=10, gt=1, description="a selector held by more parties stops raising hits"
    )
    person_similarity: float = Field(
        default=85, ge=50, le=100, description="name similarity (0-100) of a possible person hit"
    )

    demo_password: SecretStr = SecretStr("crossintel-demo")
    demo_client_secret: SecretStr = SecretStr("crossintel-demo-client")

    def review_hours(self, priority: str) -> int:
        """How long the target unit has to decide an escalation of this priority."""
        return getattr(self, f"review_hours_{priority}")

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def check_startup(self) -> None:
        """Refuse to run production with the well-known development signing key."""
        if self.is_production and self.signing_key.get_secret_value() == DEFAULT_SIGNING_KEY:
            raise ValueError(
                "CROSSINTEL_SIGNING_KEY must be set to a secret of your own in production"
            )
        if self.is_production and len(self.signing_key.get_secret_value()) < 32:
            raise ValueError("CROSSINTEL_SIGNING_KEY must be at least 32 characters in production")
        if self.is_production and (
            self.audit_key.get_secret_value() == DEFAULT_AUDIT_KEY
            or len(self.audit_key.get_secret_value()) < 32
        ):
            raise ValueError(
                "CROSSINTEL_AUDIT_KEY must be a secret of your own of at least 32 characters "
                "in production"
            )
        if self.is_production and not self.audit_enabled:
            raise ValueError("the audit trail cannot be turned off in production")
