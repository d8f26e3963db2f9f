"""The command line: check names every problem and exits 2; synthetic writes a replay file."""

from __future__ import annotations

import json

from tgstack_gateway.cli import main
from tgstack_gateway.replay import read_replay


def test_check_lists_the_problems_and_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TGSTACK_POSTGRES_PASSWORD", raising=False)
    (tmp_path / "gateway.yml").write_text("source: {kind: replay}\n")
    (tmp_path / "secrets.env").write_text("TGSTACK_RABBITMQ_PASSWORD=x\n")
    code = main(["check", "--config", str(tmp_path / "gateway.yml"), "--env-file", str(tmp_path / "secrets.env")])
    error = capsys.readouterr().err
    assert code == 2
    assert "source.replay.path is missing" in error and "postgres.dsn is missing" in error
    assert "TGSTACK_POSTGRES_PASSWORD is not set" in error and "Traceback" not in error


def test_synthetic_writes_a_replay_file_and_its_expected_state(tmp_path, capsys):
    out, expected = tmp_path / "load.jsonl", tmp_path / "expected.json"
    assert main(["synthetic", "--out", str(out), "--count", "1000", "--chats", "4", "--expected", str(expected)]) == 0
    bad = []
    events = list(read_replay(out, lambda number, reason: bad.append((number, reason))))
    assert len(events) == 1000 and bad == []
    final = json.loads(expected.read_text())
    assert 800 < len(final) < 1000 and "distinct messages in 4 chats" in capsys.readouterr().out


def test_telegram_login_problems_are_told_apart_from_crashes():
    """run exits 4 on these (systemd: RestartPreventExitStatus) instead of restarting against Telegram."""
    from telethon.errors import AuthKeyDuplicatedError, SessionRevokedError
    from tgstack_gateway.cli import telegram_login_problem
    from tgstack_gateway.telethon_source import TelegramSourceError

    assert telegram_login_problem(TelegramSourceError("the session is not logged in"))
    assert telegram_login_problem(AuthKeyDuplicatedError(request=None))
    assert telegram_login_problem(SessionRevokedError(request=None))
    assert not telegram_login_problem(ConnectionError("network down"))
    assert not telegram_login_problem(ValueError("a bug"))


def test_a_configuration_error_found_while_running_exits_2_from_every_command(tmp_path, capsys, monkeypatch):
    """E.g. a database whose schema predates the gateway (service.check_schema): exit 2, no traceback."""
    from tgstack_gateway import service
    from tgstack_gateway.config import ConfigError

    async def refusing(*_args, **_kwargs):
        raise ConfigError(["postgres: the database has no tgstack.upsert_staged_messages(): apply the schema"])

    monkeypatch.setattr(service, "run_pipeline", refusing)
    config, secrets, replay_file = tmp_path / "gateway.yml", tmp_path / "secrets.env", tmp_path / "in.jsonl"
    config.write_text(f"source: {{kind: replay, replay: {{path: {replay_file}}}}}\n"
                      "postgres: {dsn: host=127.0.0.1 port=6432 dbname=tgstack user=tgstack_app}\n"
                      "rabbitmq: {url: 'amqp://tgstack_gateway@127.0.0.1:5672/tgstack'}\n"
                      "redis: {url: 'redis://127.0.0.1:6379/0'}\n")  # fmt: skip
    secrets.write_text("TGSTACK_POSTGRES_PASSWORD=a\nTGSTACK_RABBITMQ_PASSWORD=b\nTGSTACK_REDIS_PASSWORD=c\n")
    replay_file.write_text("")
    for command in (["run"], ["replay", str(replay_file)]):
        code = main([*command, "--config", str(config), "--env-file", str(secrets)])
        error = capsys.readouterr().err
        assert code == 2, (command, error)
        assert "upsert_staged_messages" in error and "Traceback" not in error
