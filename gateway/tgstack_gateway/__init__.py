"""The Telegram gateway of tgstack.hybrid: messages from Telegram (Telethon), a replay file or a synthetic
load, normalised, stored in TimescaleDB through PgBouncer, published to RabbitMQ with confirms and cached
in Redis, at least once end to end and idempotent on (chat, message id)."""

__version__ = "0.1.0"
