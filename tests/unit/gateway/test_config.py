"""The gateway's configuration: every problem named at once, secrets only from the environment file."""

from __future__ import annotations

import pytest
from tgstack_gateway.config import ConfigError, load

GOOD = """
source:
  kind: replay
  replay: {path: /var/lib/tgstack-gateway/in.jsonl}
postgres:
  dsn: host=127.0.0.1 port=6432 dbname=tgstack user=tgstack_app
rabbitmq:
  url: amqp://tgstack_gateway@127.0.0.1:5672/tgstack
redis:
  sentinels: ["10.0.0.1:26379", "10.0.0.2:26379", "[fd00::3]:26379"]
  username: tgstack_app
pipeline: {batch_size: 1000}
"""
SECRETS = """
# the gateway's secrets
TGSTACK_POSTGRES_PASSWORD=pg-secret
TGSTACK_RABBITMQ_PASSWORD='mq secret'
export TGSTACK_REDIS_PASSWORD="redis-secret"
TGSTACK_SENTINEL_PASSWORD=sentinel-secret
"""


@pytest.fixture
def files(tmp_path):
    def write(config: str = GOOD, secrets: str = SECRETS):
        (tmp_path / "gateway.yml").write_text(config)
        (tmp_path / "secrets.env").write_text(secrets)
        return tmp_path / "gateway.yml", tmp_path / "secrets.env"

    return write


def test_a_good_configuration(files):
    config = load(*files(), environ={})
    assert config.source == "replay" and config.batch_size == 1000 and config.batch_delay_ms == 50
    assert config.postgres_connections == 2
    assert config.redis_sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("fd00::3", 26379))
    assert config.secrets["TGSTACK_RABBITMQ_PASSWORD"] == "mq secret"
    assert "secret" not in repr(config)  # secrets stay out of logs and tracebacks


def test_every_problem_is_listed_at_once(files):
    broken = GOOD.replace("kind: replay", "kind: telegram").replace("batch_size: 1000", "batch_size: 0")
    with pytest.raises(ConfigError) as caught:
        load(*files(broken, SECRETS.replace("TGSTACK_REDIS_PASSWORD", "TGSTACK_REDIS_PASSWRD")), environ={})
    problems = "\n".join(caught.value.problems)
    assert "source.kind is 'telegram': use one of telethon, replay, synthetic" in problems
    assert "pipeline.batch_size must be positive, not 0" in problems
    assert "TGSTACK_REDIS_PASSWORD is not set" in problems
    assert len(caught.value.problems) == 3


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda c: c.replace("tgstack_gateway@", "tgstack_gateway:pw@"), "rabbitmq.url carries a password"),
        (lambda c: c.replace("user=tgstack_app", "user=tgstack_app password=x"), "postgres.dsn carries a password"),
        (lambda c: c.replace("kind: replay", "kind: telethon"), "TGSTACK_TELEGRAM_SESSION is not set"),
        (lambda c: c.replace("kind: replay", "kind: telethon"), "source.telethon.chats is missing"),
        (
            lambda c: c.replace("  replay: {path: /var/lib/tgstack-gateway/in.jsonl}\n", ""),
            "source.replay.path is missing",
        ),
        (lambda c: c.replace('"10.0.0.2:26379"', '"10.0.0.2"'), "'10.0.0.2' is not host:port"),
        (lambda c: c.replace("batch_size: 1000", "batch_size: many"), "pipeline.batch_size must be int"),
        (lambda c: c + "rabbitmq_extra: [", "not valid YAML"),
        (lambda c: c.replace("postgres:\n", "postgres:\n  connections: 9\n"), "postgres.connections is 9: use 1 to 8"),
        (lambda c: c.replace("postgres:\n", "postgres:\n  connections: 0\n"), "postgres.connections must be positive"),
    ],
)
def test_bad_settings_are_named(files, change, words):
    with pytest.raises(ConfigError, match="configuration has problems") as caught:
        load(*files(change(GOOD)), environ={})
    assert any(words in problem for problem in caught.value.problems), caught.value.problems


def test_a_missing_secrets_file_is_named(files, tmp_path):
    config_path, _secrets = files()
    with pytest.raises(ConfigError) as caught:
        load(config_path, tmp_path / "nowhere.env", environ={})
    assert any("nowhere.env: cannot be read" in problem for problem in caught.value.problems)
