"""Server configuration from ``ROUTERISK_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob an operator can turn; the defaults serve the embedded seeds."""

    model_config = SettingsConfigDict(env_prefix="ROUTERISK_", extra="ignore")

    address: str = Field("0.0.0.0:50051", description="host:port the gRPC server listens on")
    max_workers: int = Field(16, ge=1, le=1024, description="gRPC handler threads (per process)")
    workers: int = Field(1, ge=1, le=64, description="server processes sharing the port (SO_REUSEPORT)")
    max_message_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="largest request or response")
    grace_seconds: float = Field(20.0, ge=0, description="time in-flight calls get on shutdown")
    h3_resolution: int = Field(8, ge=0, le=15, description="H3 resolution of route cell chains")
    max_route_points: int = Field(100_000, ge=2, description="most points a route may have")
    max_batch_size: int = Field(1000, ge=1, description="most requests in one BatchScoreRoutes")
    default_speed_kmh: float = Field(60.0, gt=0, le=150, description="speed used when a request sets none")
    layer_dir: Path | None = Field(None, description="layer store; its active layer is served (unset: the seed layer)")
    layer_poll_seconds: float = Field(2.0, gt=0, description="how often the layer store's ACTIVE pointer is checked")
    border_live_max_age_minutes: float = Field(60.0, gt=0, description="live waits older than this fall back")
    border_profiles_path: Path | None = Field(
        None, description="hour-of-week wait profiles built from CBP history (routerisk border profiles)"
    )
    border_feed_url: str | None = Field(None, description="CBP wait-times feed (JSON or XML) the server polls itself")
    border_poll_seconds: float = Field(300.0, gt=0, description="how often the feed is polled")
    border_feed_timeout_seconds: float = Field(
        30.0, gt=0, description="the whole feed fetch (a feed that trickles is abandoned at it)"
    )
    border_feed_connect_timeout_seconds: float = Field(5.0, gt=0, description="connecting to the feed")
    border_feed_read_timeout_seconds: float = Field(10.0, gt=0, description="the feed sending nothing this long")
    border_max_clock_skew_seconds: float = Field(
        300.0, ge=0, description="observations stamped further ahead of the server's clock are refused (feed: skipped)"
    )
    crossing_match_km: float = Field(15.0, gt=0, description="how far a crossing may be from a port's facility")
    departure_bucket_seconds: int = Field(
        3600, ge=0, description="departures are scored at the start of their bucket (shared cache work); 0: exact"
    )
    cache_max_entries: int = Field(10_000, ge=0, description="in-process result cache size (0 disables)")
    cache_ttl_seconds: float = Field(600.0, gt=0, description="result cache time to live")
    redis_url: str | None = Field(
        None, description="redis:// or rediss:// URL (ACL user and password in it); unset: in-process cache"
    )
    redis_timeout_ms: float = Field(50.0, gt=0, description="timeout of every Redis call")
    redis_sentinels: str | None = Field(None, description="host:port,host:port of Redis Sentinels")
    redis_sentinel_master: str = Field("mymaster", description="the master's name at the Sentinels")
    redis_prefix: str = Field("routerisk:", description="prefix of every key this service writes")
    cache_hmac_key: SecretStr | None = Field(
        None,
        description="key of the HMAC-SHA256 sealing every shared cache entry (unset: a checksum, "
        "which stops corruption, not forgery)",
    )
    api_keys: str | None = Field(
        None, description="JSON list of {sha256, tenant, permissions}; unset with no file: authentication off"
    )
    api_keys_file: Path | None = Field(None, description="file holding that JSON list (a mounted secret)")
    max_concurrent_rpcs: int = Field(0, ge=0, description="API calls served at once (0: max_workers)")
    rate_limit_per_second: float = Field(0.0, ge=0, description="calls per second per tenant and replica (0: off)")
    rate_limit_burst: float = Field(20.0, ge=1, description="calls a tenant may save up")
    max_streams_per_connection: int = Field(
        256,
        ge=1,
        description="calls one HTTP/2 connection may have open (clients hold more until one ends)",
    )
    max_concurrent_rpcs_per_tenant: int = Field(
        0, ge=0, description="API calls one tenant may have in flight (0: half of max_concurrent_rpcs)"
    )
    server_kind: Literal["aio", "threads"] = Field(
        "aio",
        description="aio: calls are coroutines, a handler thread is taken only once the request is read; "
        "threads: the former thread-per-call server (a thread per call from its arrival)",
    )
    request_read_timeout_seconds: float = Field(
        10.0, gt=0, description="a call whose request message is not complete this long after it arrived ends"
    )
    keepalive_time_ms: int = Field(60_000, ge=0, description="the server pings a connection idle this long (0: off)")
    keepalive_timeout_ms: int = Field(20_000, ge=1, description="a ping unanswered this long closes the connection")
    min_client_ping_interval_ms: int = Field(
        10_000, ge=0, description="clients pinging more often than this are told to go away (too_many_pings)"
    )
    max_connection_idle_ms: int = Field(
        300_000, ge=0, description="a connection without calls this long is closed (GOAWAY; 0: never)"
    )
    max_connection_age_ms: int = Field(
        1_800_000, ge=0, description="a connection this old is asked to reconnect (GOAWAY; 0: never)"
    )
    max_connection_age_grace_ms: int = Field(
        60_000, ge=0, description="calls open when a connection reaches its age get this long to end"
    )
    max_trip_streams: int = Field(
        64, ge=1, description="MonitorTrip streams open at once, on their own threads beyond max_concurrent_rpcs"
    )
    max_trip_streams_per_tenant: int = Field(
        0, ge=0, description="MonitorTrip streams one tenant may hold open (0: half of max_trip_streams)"
    )
    trip_store_max_trips: int = Field(10_000, ge=1, description="trips whose MonitorTrip state is kept for resuming")
    trip_store_ttl_seconds: float = Field(7200.0, gt=0, description="a trip idle this long is forgotten")
    deadline_cap_seconds: float = Field(30.0, gt=0, description="server-side deadline for calls without a shorter one")
    tls_cert_file: Path | None = Field(None, description="PEM certificate chain: serve TLS")
    tls_key_file: Path | None = Field(None, description="PEM private key of that certificate")
    tls_client_ca_file: Path | None = Field(None, description="PEM CA bundle: require client certificates (mutual TLS)")
    http_address: str = Field(
        "0.0.0.0:8080",
        description="host:port of the HTTP/JSON port (Connect, gRPC-Web; the dispatcher page at /); empty: off",
    )
    http_max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="largest request body on the HTTP port (413 past it, unread)"
    )
    http_max_connections: int = Field(
        1000, ge=1, description="connections the HTTP port holds at once (503 past it: slow clients cannot pile up)"
    )
    http_body_timeout_seconds: float = Field(
        10.0, gt=0, description="time a request body may take to arrive on the HTTP port (deadline_exceeded past it)"
    )
    metrics_address: str = Field(
        "0.0.0.0:9090", description="host:port of /metrics (empty: off; with workers, worker n uses port + n)"
    )
    log_level: str = Field("INFO", description="logging level")
    log_format: str = Field("json", pattern="^(json|text)$", description="json or text logs")

    @field_validator("cache_hmac_key")
    @classmethod
    def _hmac_key_is_a_key(cls, value: SecretStr | None) -> SecretStr | None:
        """A set but short key (an empty variable, a typo) would seal with a checksum or a guessable
        HMAC without a word: refused at start instead."""
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("ROUTERISK_CACHE_HMAC_KEY must be at least 16 characters (32 random bytes advised)")
        return value
