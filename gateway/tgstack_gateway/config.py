"""The gateway's configuration: a YAML file for settings and an environment file for secrets.

``load()`` reads both, checks everything at once and raises ConfigError listing every problem with
where it is and how to fix it, so ``tgstack-gateway check`` (and a start under systemd) fails with
one clear message instead of a traceback or a crash loop. Secrets never live in the YAML file: the
environment file (mode 0600, owned by the gateway's user) holds them as ``NAME=value`` lines.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing as t
import urllib.parse
from pathlib import Path

import yaml

SOURCES = ("telethon", "replay", "synthetic")
PUBLISH_MODES = ("message", "batch")
# secret -> when it is needed
SECRETS = {
    "TGSTACK_POSTGRES_PASSWORD": "always",
    "TGSTACK_RABBITMQ_PASSWORD": "always",
    "TGSTACK_REDIS_PASSWORD": "always",
    "TGSTACK_SENTINEL_PASSWORD": "with sentinels",
    "TGSTACK_TELEGRAM_API_ID": "telethon",
    "TGSTACK_TELEGRAM_API_HASH": "telethon",
    "TGSTACK_TELEGRAM_SESSION": "telethon",
}


class ConfigError(ValueError):
    """Every problem found in the configuration, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the gateway's configuration has problems:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclasses.dataclass(frozen=True)
class Config:
    source: str
    chats: tuple[str | int, ...]
    replay_path: str | None
    synthetic_rate: float
    synthetic_chats: int
    synthetic_count: int | None
    synthetic_seed: int
    synthetic_first_chat: int
    postgres_dsn: str
    postgres_connections: int
    rabbitmq_url: str
    rabbitmq_exchange: str
    publish_mode: str
    redis_sentinels: tuple[tuple[str, int], ...]
    redis_master_name: str
    redis_url: str | None
    redis_username: str | None
    recent_per_chat: int
    dedup_ttl_seconds: int
    batch_size: int
    batch_delay_ms: int
    spool_dir: str
    spool_max_bytes: int
    queue_size: int
    retry_budget_seconds: float
    metrics_listen: str
    secrets: dict[str, str] = dataclasses.field(repr=False)


def read_env_file(path: str | Path) -> dict[str, str]:
    """NAME=value lines (values may be quoted); blank lines and # comments are skipped."""
    values = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = re.fullmatch(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)", stripped)
        if not match:
            raise ConfigError([f"{path}:{number}: not a NAME=value line"])
        name, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


class Reader:
    """Typed access to the YAML document that records problems instead of stopping at the first."""

    def __init__(self, document: dict[str, t.Any], where: str) -> None:
        self.document = document
        self.where = where
        self.problems: list[str] = []

    def get(self, path: str, kind: type | tuple[type, ...], default: t.Any = None, required: bool = False) -> t.Any:
        value: t.Any = self.document
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            if required:
                self.problems.append(f"{self.where}: {path} is missing")
            return default
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            self.problems.append(f"{self.where}: {path} must be {getattr(kind, '__name__', kind)}, not {value!r}")
            return default
        if not isinstance(value, kind):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            self.problems.append(f"{self.where}: {path} must be {names}, not {value!r}")
            return default
        return value

    def positive(self, path: str, default: int) -> int:
        value = self.get(path, int, default)
        if value <= 0:
            self.problems.append(f"{self.where}: {path} must be positive, not {value}")
        return value


def sentinel_addresses(reader: Reader) -> tuple[tuple[str, int], ...]:
    addresses = []
    for entry in reader.get("redis.sentinels", list, []):
        match = re.fullmatch(r"\[?([^\]]+?)\]?:(\d+)", str(entry))
        if not match:
            reader.problems.append(f"{reader.where}: redis.sentinels: '{entry}' is not host:port")
            continue
        addresses.append((match.group(1), int(match.group(2))))
    return tuple(addresses)


def load(path: str | Path, env_file: str | Path | None = None, environ: t.Mapping[str, str] | None = None) -> Config:
    """Read and check the configuration; ConfigError lists every problem."""
    where = str(path)
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise ConfigError([f"{where}: cannot be read ({error.strerror})"]) from None
    except yaml.YAMLError as error:
        raise ConfigError([f"{where}: not valid YAML ({str(error).splitlines()[0]})"]) from None
    if not isinstance(document, dict):
        raise ConfigError([f"{where}: must be a mapping of settings"])
    reader = Reader(document, where)
    secrets = dict(environ if environ is not None else os.environ)
    if env_file is not None:
        try:
            secrets.update(read_env_file(env_file))
        except OSError as error:
            reader.problems.append(f"{env_file}: cannot be read ({error.strerror}): it holds the secrets")

    source = reader.get("source.kind", str, "synthetic")
    if source not in SOURCES:
        reader.problems.append(f"{where}: source.kind is '{source}': use one of {', '.join(SOURCES)}")
    replay_path = reader.get("source.replay.path", str, required=source == "replay")
    chats = tuple(reader.get("source.telethon.chats", list, [], required=source == "telethon"))
    if source == "telethon" and not chats:
        reader.problems.append(f"{where}: source.telethon.chats is empty: list the chats or channels to follow")
    publish_mode = reader.get("rabbitmq.publish", str, "message")
    if publish_mode not in PUBLISH_MODES:
        reader.problems.append(f"{where}: rabbitmq.publish is '{publish_mode}': use message (one per stored "
                               "message) or batch (one per stored batch)")  # fmt: skip
    sentinels = sentinel_addresses(reader)
    redis_url = reader.get("redis.url", str)
    if not sentinels and not redis_url:
        reader.problems.append(f"{where}: redis: give sentinels (host:port list) or url")
    config = Config(
        source=source,
        chats=chats,
        replay_path=replay_path,
        synthetic_rate=float(reader.get("source.synthetic.rate", (int, float), 1000)),
        synthetic_chats=reader.positive("source.synthetic.chats", 50),
        synthetic_count=reader.get("source.synthetic.count", int),
        synthetic_seed=reader.get("source.synthetic.seed", int, 1),
        synthetic_first_chat=reader.get("source.synthetic.first_chat", int, -1001000000000),
        postgres_dsn=reader.get("postgres.dsn", str, required=True) or "",
        postgres_connections=reader.positive("postgres.connections", 2),
        rabbitmq_url=reader.get("rabbitmq.url", str, required=True) or "",
        rabbitmq_exchange=reader.get("rabbitmq.exchange", str, "tgstack.messages"),
        publish_mode=publish_mode,
        redis_sentinels=sentinels,
        redis_master_name=reader.get("redis.master_name", str, "tgstack"),
        redis_url=redis_url,
        redis_username=reader.get("redis.username", str),
        recent_per_chat=reader.positive("redis.recent_per_chat", 100),
        dedup_ttl_seconds=reader.positive("redis.dedup_ttl_seconds", 86400),
        batch_size=reader.positive("pipeline.batch_size", 500),
        batch_delay_ms=reader.positive("pipeline.batch_delay_ms", 50),
        spool_dir=reader.get("pipeline.spool_dir", str, "/var/lib/tgstack-gateway/spool"),
        spool_max_bytes=reader.positive("pipeline.spool_max_bytes", 1 << 30),
        queue_size=reader.positive("pipeline.queue_size", 10000),
        retry_budget_seconds=float(reader.get("pipeline.retry_budget_seconds", (int, float), 30)),
        metrics_listen=reader.get("metrics.listen", str, "127.0.0.1:9465"),
        secrets={},
    )
    if config.postgres_connections > 8:
        reader.problems.append(f"{where}: postgres.connections is {config.postgres_connections}: use 1 to 8 (each is "
                               "a PgBouncer client and, while it writes, a server connection)")  # fmt: skip
    if urllib.parse.urlsplit(config.rabbitmq_url).password is not None:
        reader.problems.append(f"{where}: rabbitmq.url carries a password: keep it in TGSTACK_RABBITMQ_PASSWORD")
    if re.search(r"(?i)\bpassword\s*=", config.postgres_dsn):
        reader.problems.append(f"{where}: postgres.dsn carries a password: keep it in TGSTACK_POSTGRES_PASSWORD")
    for name, needed in SECRETS.items():
        wanted = needed == "always" or needed == source or (needed == "with sentinels" and bool(sentinels))
        if wanted and not secrets.get(name):
            reader.problems.append(f"{env_file or 'the environment'}: {name} is not set ({secret_purpose(name)})")
    if source == "telethon" and not secrets.get("TGSTACK_TELEGRAM_API_ID", "0").isdigit():
        reader.problems.append(f"{env_file or 'the environment'}: TGSTACK_TELEGRAM_API_ID must be a number")
    if reader.problems:
        raise ConfigError(reader.problems)
    return dataclasses.replace(config, secrets={name: secrets[name] for name in SECRETS if secrets.get(name)})


def secret_purpose(name: str) -> str:
    return {
        "TGSTACK_POSTGRES_PASSWORD": "the database user's password, for PgBouncer",
        "TGSTACK_RABBITMQ_PASSWORD": "the RabbitMQ user's password",
        "TGSTACK_REDIS_PASSWORD": "the Redis user's password",
        "TGSTACK_SENTINEL_PASSWORD": "the Sentinels' password",
        "TGSTACK_TELEGRAM_API_ID": "from my.telegram.org",
        "TGSTACK_TELEGRAM_API_HASH": "from my.telegram.org",
        "TGSTACK_TELEGRAM_SESSION": "a session string from `tgstack-gateway login`",
    }[name]
