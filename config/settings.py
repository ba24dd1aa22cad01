"""Typed settings, read from FLARE_* environment variables and an optional .env file.

Nested groups use a double underscore: FLARE_X__BEARER_TOKEN, FLARE_DASHBOARD__PORT.
Nothing here touches the network or the disk at import time; `Settings()` only reads values.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseModel):
    """Who the public is talking to; used in every message we send back."""

    name: str = "Flare Emergency Service"
    handle: str = "flare999"
    emergency_number: str = "999"
    non_emergency_number: str = "101"
    non_emergency_url: str = "https://example.org/report"
    timezone: str = "Europe/London"


class DashboardSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    # Empty means "generate one and keep it in the data dir" (see dashboard.security).
    secret_key: SecretStr = SecretStr("")
    session_idle_minutes: int = 30
    # Largest request body any dashboard route reads (forms, JSON); photo uploads through a share
    # link may be up to share.max_upload_bytes. Larger bodies are refused before they are read.
    max_body_bytes: int = 256 * 1024
    public_base_url: str = ""  # for links sent to reporters; defaults to http://host:port
    tile_url: str = ""  # map tiles; empty = the offline base map (country outlines and coastlines)
    # The service area's middle: the offline base map draws outlines in detail around it.
    map_centre_lat: float = Field(default=54.0, ge=-90, le=90)
    map_centre_lon: float = Field(default=-2.0, ge=-180, le=180)


class XSettings(BaseModel):
    bearer_token: SecretStr = SecretStr("")
    consumer_key: SecretStr = SecretStr("")
    consumer_secret: SecretStr = SecretStr("")
    access_token: SecretStr = SecretStr("")
    access_token_secret: SecretStr = SecretStr("")
    user_id: str = ""
    base_url: str = ""  # empty = the real API; set to the sandbox in demos and tests
    poll_seconds: float = 15.0

    @property
    def configured(self) -> bool:
        return bool(self.bearer_token.get_secret_value() and self.user_id)


class BlueskySettings(BaseModel):
    handle: str = ""
    app_password: SecretStr = SecretStr("")
    base_url: str = ""  # empty = https://bsky.social
    poll_seconds: float = 10.0

    @property
    def configured(self) -> bool:
        return bool(self.handle and self.app_password.get_secret_value())


class RedditSettings(BaseModel):
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    username: str = ""
    password: SecretStr = SecretStr("")
    user_agent: str = "flare-emergency-intake/0.1"
    base_url: str = ""  # empty = the real API
    subreddits: list[str] = Field(default_factory=list)
    poll_seconds: float = 15.0

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret.get_secret_value() and self.username)


class TriageSettings(BaseModel):
    # Where exported/quantised encoder files are cached (built once from installed weights).
    model_cache_dir: Path | None = None
    threads: int = 1
    # PostgreSQL, several workers: a worker that finds another's act transaction holding the
    # grouping lock works out its own group's grouping while it waits (grouping.finder.plan), so
    # the lock is held for less. It costs CPU (the group is matched twice, in part): worth it when
    # workers have cores of their own, not when they share two cores with the database.
    plan_grouping: bool = False
    # Local gazetteer of landmarks/streets for the service's own area (JSON lines).
    local_gazetteer: Path | None = None


class RetentionSettings(BaseModel):
    """How long personal data is kept. Anything under legal hold is kept regardless."""

    unattached_post_days: int = 30  # posts never attached to an incident
    incident_days: int = 365  # resolved/closed incidents and all their evidence
    media_days: int = 90  # uploaded media files, counted from upload


class CadSettings(BaseModel):
    """Hand-off of incidents to a computer-aided dispatch system (EIDO JSON over a signed webhook)."""

    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")
    agency_id: str = "flare.example.org"  # our identifier as the sending agency
    agency_name: str = "Flare social media intake"
    max_attempts: int = 5
    backoff_seconds: float = 2.0  # doubled after every failed attempt
    timeout_seconds: float = 10.0


class EvidenceSettings(BaseModel):
    """The keys and checkpoints that make the record tamper-evident.

    Both live outside the database (and by default outside the data directory, beside it), so a
    copy or rewrite of the database alone can neither forge chain entries nor hide truncation.
    """

    key_dir: Path | None = None  # empty = <data_dir>-evidence/keys (created 0700 on first run)
    checkpoint_file: Path | None = None  # empty = <data_dir>-evidence/checkpoints.jsonl (append-only)
    checkpoint_webhook_url: str = ""  # each signed checkpoint is also POSTed here when set
    checkpoint_interval_seconds: float = 60.0
    webhook_timeout_seconds: float = 5.0


class ShareSettings(BaseModel):
    """One-time links through which a reporter shares location, photos or live camera."""

    link_ttl_minutes: float = 30.0
    media_dir: Path | None = None  # empty = data_dir/media
    max_upload_bytes: int = 15 * 1024 * 1024  # one photo
    max_frame_bytes: int = 512 * 1024  # one live still frame
    frame_interval_ms: int = 1000  # how often the phone sends a still frame while live


class MediaArchiveSettings(BaseModel):
    """Media attached to posts (the addresses a platform payload names) are fetched once, by a
    background job after the post is stored, and kept with their SHA-256; the dashboard only ever
    serves the archived copy. Off: nothing is fetched and media cannot be revealed."""

    enabled: bool = True
    max_bytes: int = 25 * 1024 * 1024  # one image or short video
    timeout_seconds: float = 15.0
    content_types: list[str] = Field(default_factory=lambda: ["image/", "video/"])  # prefixes
    # Payload addresses naming loopback, private or link-local hosts are refused (a hostile
    # payload must not make Flare fetch from inside its own network); tests against a local
    # server turn this on.
    allow_private_addresses: bool = False


class NotifierSettings(BaseModel):
    """External paging for escalation steps. Each channel is enabled by configuring it.

    `routes` maps a policy target (e.g. duty_manager) to channel recipients such as
    "webhook", "email:duty@example.org" or "sms:+447700900123". A target with no route goes to
    the webhook when one is configured. FLARE_NOTIFIERS__ROUTES takes JSON.
    """

    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = ""
    smtp_starttls: bool = True
    sms_gateway_url: str = ""
    sms_gateway_token: SecretStr = SecretStr("")
    sms_sender: str = "Flare"
    routes: dict[str, list[str]] = Field(default_factory=dict)
    timeout_seconds: float = 5.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLARE_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Path(".flare")
    database_url: str = ""  # empty = SQLite in data_dir
    redis_url: str = ""  # empty = embedded Redis started by Flare with AOF in data_dir
    log_level: str = "INFO"

    service: ServiceSettings = Field(default_factory=ServiceSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    x: XSettings = Field(default_factory=XSettings)
    bluesky: BlueskySettings = Field(default_factory=BlueskySettings)
    reddit: RedditSettings = Field(default_factory=RedditSettings)
    triage: TriageSettings = Field(default_factory=TriageSettings)
    notifiers: NotifierSettings = Field(default_factory=NotifierSettings)
    share: ShareSettings = Field(default_factory=ShareSettings)
    media_archive: MediaArchiveSettings = Field(default_factory=MediaArchiveSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    cad: CadSettings = Field(default_factory=CadSettings)
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)

    # Escalation policy file (YAML); empty = the defaults shipped in config/policies.yaml.
    escalation_policy_file: Path | None = None
    # External paging for escalation steps (HMAC-SHA256 signed JSON POST).
    escalation_webhook_url: str = ""
    escalation_webhook_secret: SecretStr = SecretStr("")
    # Outbox sweep: anything persisted but not progressed for this long is re-driven.
    # The platform account `flare drill` posts from; only its posts carry the drill mark.
    drill_author: str = "flare_drill"
    sweep_interval_seconds: float = 2.0
    # Threads that only send replies, in each `flare sender` process, and in a worker while no
    # sender process is alive: a send waits on the platform, and a reporter's receipt must not
    # queue behind a burst's triage (nor triage behind the sends). 0: workers serve the messages
    # queue between triage jobs.
    sender_threads: int = 4
    outbox_grace_seconds: float = 10.0

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'flare.db').resolve()}"

    @property
    def resolved_media_dir(self) -> Path:
        return Path(self.share.media_dir) if self.share.media_dir else Path(self.data_dir) / "media"

    @property
    def evidence_home(self) -> Path:
        """Beside the data directory, never inside it: <data_dir>-evidence."""
        data = Path(self.data_dir).resolve()
        return data.parent / f"{data.name}-evidence"

    @property
    def resolved_key_dir(self) -> Path:
        return Path(self.evidence.key_dir) if self.evidence.key_dir else self.evidence_home / "keys"

    @property
    def resolved_checkpoint_file(self) -> Path:
        if self.evidence.checkpoint_file:
            return Path(self.evidence.checkpoint_file)
        return self.evidence_home / "checkpoints.jsonl"

    @property
    def embedded_redis(self) -> bool:
        return not self.redis_url
