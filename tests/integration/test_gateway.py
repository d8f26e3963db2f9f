"""The Telegram gateway on the lab hosts, deployed by site.yml (the lab fixture runs lab/up).

- A replay of 10,000 messages (duplicates, edits, deletions, replies, media) with bad lines mixed in:
  the hypertable holds exactly the distinct messages in their final state, RabbitMQ got every stored
  message, Redis holds the recent ones per chat, and each bad line was skipped and reported.
- A synthetic run while PostgreSQL, then PgBouncer, then RabbitMQ restart and Redis fails over: nothing
  acknowledged is missing and every stored message was published; the counts are printed.
- The service the role installed: active under systemd, messages arriving, metrics served, and a broken
  configuration stops it with exit status 2 instead of a restart loop.

Each test works on chats of its own (ids below -1009000000000), so the lab's own synthetic gateway
(chats from -1001000000000) runs on beside them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import subprocess
import sys
import time
import typing as t
import urllib.request

import pytest
import redis
import yaml
from labhost import PROJECT, run

sys.path.insert(0, str(PROJECT / "gateway"))
from tgstack_gateway.synthetic import SyntheticLoad  # the gateway package lives in gateway/

GATEWAY_HOST = "tgstack-lab-mq1"
DB_HOST = "tgstack-lab-db1"
REDIS_HOSTS = ["tgstack-lab-db1", "tgstack-lab-cache1", "tgstack-lab-cache2"]
STATE = "/var/lib/tgstack-gateway"
CONFIG = "/etc/tgstack-gateway/gateway.yml"
SECRETS = "/etc/tgstack-gateway/secrets.env"
ADMIN = ("tgstack_admin", "lab-rabbitmq-admin-password")
REDIS_APP = ("tgstack_app", "lab-redis-app-password")
SENTINEL_PASSWORD = "lab-sentinel-password"


# -- helpers --------------------------------------------------------------------------------------------


def on(host: str, command: str, *, user: str | None = None, timeout: int = 600, stdin: str | None = None,
       check: bool = True) -> subprocess.CompletedProcess:  # fmt: skip
    prefix = ["runuser", "-u", user, "--"] if user else []
    done = subprocess.run(["docker", "exec", "-i", host, *prefix, "bash", "-c", command], input=stdin,
                          capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip
    if check:
        assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done


def sql(query: str) -> list[list[str]]:
    out = on(DB_HOST, f"runuser -u postgres -- psql -d tgstack -AtF '\t' -v ON_ERROR_STOP=1 -c {quote(query)}").stdout
    return [line.split("\t") for line in out.splitlines() if line]


def quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def management(method: str, path: str, body: t.Any = None) -> t.Any:
    """RabbitMQ's management API on the lab's published port (lab/up: 127.0.0.1:15672)."""
    request = urllib.request.Request(f"http://127.0.0.1:15672/api/{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)  # fmt: skip
    token = base64.b64encode(":".join(ADMIN).encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=120) as answer:
        data = answer.read()
    return json.loads(data) if data else None


def consumer_queue(name: str, chats: t.Iterable[int]) -> None:
    """A quorum queue of the test's own, bound to the gateway's exchange for CHATS only."""
    if queue_exists(name):
        management("DELETE", f"queues/tgstack/{name}")
    management("PUT", f"queues/tgstack/{name}", {"durable": True, "arguments": {"x-queue-type": "quorum"}})
    for chat in chats:
        management("POST", f"bindings/tgstack/e/tgstack.messages/q/{name}", {"routing_key": f"message.*.{chat}"})


def queue_exists(name: str) -> bool:
    try:
        management("GET", f"queues/tgstack/{name}")
        return True
    except urllib.error.HTTPError:
        return False


def drain_queue(name: str) -> list[str]:
    """The message ids of everything in queue NAME (taken off it), then the queue is deleted."""
    ids: list[str] = []
    while True:
        take = {"count": 5000, "ackmode": "ack_requeue_false", "encoding": "auto", "truncate": 100}
        got = management("POST", f"queues/tgstack/{name}/get", take)
        ids.extend(message["properties"]["message_id"] for message in got)
        if len(got) < 5000:
            break
    management("DELETE", f"queues/tgstack/{name}")
    return ids


def lab_address(name: str) -> str:
    inspect = run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name])
    return inspect.stdout.strip()


def redis_master() -> redis.Redis:
    sentinel = redis.Redis(host=lab_address(REDIS_HOSTS[0]), port=26379, password=SENTINEL_PASSWORD, socket_timeout=5)
    host, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "tgstack")
    return redis.Redis(host=host.decode(), port=int(port), username=REDIS_APP[0], password=REDIS_APP[1],
                       socket_timeout=5, decode_responses=True)  # fmt: skip


def forget(first_chat: int, chats: int) -> None:
    """Remove what an earlier run left for these chats: rows, and the Redis keys (dedup keys above all)."""
    sql(f"DELETE FROM tgstack.messages WHERE chat_id <= {first_chat} AND chat_id > {first_chat - chats}")
    master = redis_master()
    for chat in range(first_chat, first_chat - chats, -1):
        master.delete(f"tgstack:seen:{chat}", f"tgstack:recent:{chat}", f"tgstack:chat:{chat}")


def stored_state(first_chat: int, chats: int) -> dict[tuple[int, int], tuple[str | None, str | None, bool]]:
    rows = sql(f"SELECT chat_id, message_id, coalesce(text, '<null>'), coalesce(edited_at::text, ''), "
               f"deleted_at IS NOT NULL FROM tgstack.messages "
               f"WHERE chat_id <= {first_chat} AND chat_id > {first_chat - chats}")  # fmt: skip
    return {(int(chat), int(message)): (None if text == "<null>" else text, edited or None, deleted == "t")
            for chat, message, text, edited, deleted in rows}  # fmt: skip


def same_time(stored: str | None, expected: str | None) -> bool:
    if stored is None or expected is None:
        return stored == expected
    return dt.datetime.fromisoformat(stored.replace(" ", "T")) == dt.datetime.fromisoformat(expected)


def assert_final_state(stored: dict, expected: dict) -> None:
    missing = sorted(set(expected) - set(stored))[:5]
    extra = sorted(set(stored) - set(expected))[:5]
    assert not missing and not extra, f"missing {missing}, unexpected {extra}"
    wrong = [(key, stored[key], (final.text, final.edited_at, final.deleted)) for key, final in expected.items()
             if stored[key][0] != final.text or not same_time(stored[key][1], final.edited_at)
             or stored[key][2] != final.deleted]  # fmt: skip
    assert not wrong, f"{len(wrong)} messages differ from their final state, e.g. {wrong[:3]}"


def assert_every_stored_message_published(published: list[str], expected: dict) -> None:
    versions = set(published)
    unpublished = [(chat, message) for (chat, message), final in expected.items()
                   if f"{chat}:{message}:{final.edited_at or 0}" not in versions]  # fmt: skip
    assert not unpublished, f"{len(unpublished)} stored messages never published in their final version"


# -- the tests ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(lab):
    assert lab.returncode == 0, lab.stdout[-3000:] + lab.stderr[-3000:]
    return GATEWAY_HOST


def test_the_service_runs_and_messages_arrive(gateway):
    assert on(gateway, "systemctl is-active tgstack-gateway").stdout.strip() == "active"
    show = on(gateway, "systemctl show tgstack-gateway -p Type -p WatchdogUSec -p User -p NRestarts").stdout
    assert "Type=notify" in show and "User=tgstack-gateway" in show and "WatchdogUSec=0" not in show
    count = "SELECT count(*) FROM tgstack.messages WHERE chat_id > -1001000000100 AND chat_id <= -1001000000000"
    before = int(sql(count)[0][0])
    deadline = time.monotonic() + 60
    while int(sql(count)[0][0]) <= before and time.monotonic() < deadline:
        time.sleep(2)
    assert int(sql(count)[0][0]) > before, "no new message arrived from the lab's gateway in 60 s"
    metrics = on(gateway, "python3 -c \"import urllib.request; print(urllib.request.urlopen("
                          "'http://127.0.0.1:9465/metrics', timeout=5).read().decode())\"").stdout  # fmt: skip
    received = re.search(r'^tgstack_gateway_received_total\{source="synthetic"\} (\S+)$', metrics, re.M)
    assert received and float(received.group(1)) > 0
    assert re.search(r"^tgstack_gateway_published_total (\S+)$", metrics, re.M)


def test_replay_of_10000_messages_leaves_exactly_the_final_state(gateway):
    first_chat, chats, count = -1009100000000, 20, 10000
    load = SyntheticLoad(chats=chats, seed=7, first_chat=first_chat)
    lines = [json.dumps(record) for record in load.records(count)]
    # bad input among the good: malformed JSON, an unknown type, a message without its date
    lines.insert(100, '{"chat_id": -1009100000000, "message_id": 1,')
    lines.insert(2000, json.dumps({"type": "reaction", "chat_id": first_chat, "message_id": 1}))
    lines.insert(5000, json.dumps({"chat_id": first_chat, "message_id": 99999, "text": "no date"}))
    on(gateway, f"cat > {STATE}/it-replay.jsonl", user="tgstack-gateway", stdin="\n".join(lines) + "\n")
    consumer_queue("it.gateway.replay", load.chats)
    forget(first_chat, chats)

    started = time.monotonic()
    replay = on(gateway, f"tgstack-gateway replay {STATE}/it-replay.jsonl", user="tgstack-gateway", timeout=900)
    seconds = time.monotonic() - started
    totals = json.loads(replay.stdout.strip().splitlines()[-1])
    skipped = [json.loads(line) for line in replay.stderr.splitlines() if "skipped a bad record" in line]
    assert [entry["where"].rsplit(":", 1)[1] for entry in skipped] == ["101", "2001", "5001"], replay.stderr[-2000:]
    assert "not JSON" in skipped[0]["message"] and "unknown type" in skipped[1]["message"]
    assert "created_at is missing" in skipped[2]["message"]
    assert totals["bad_records"] == 3 and totals["received"] == count and totals["acknowledged"] == count

    stored = stored_state(first_chat, chats)
    assert_final_state(stored, load.final)
    published = drain_queue("it.gateway.replay")
    assert_every_stored_message_published(published, load.final)

    master = redis_master()
    for chat in load.chats:
        recent = master.zrange(f"tgstack:recent:{chat}", 0, -1, withscores=True)
        ids = {int(score) for _member, score in recent}
        alive = {message for (held, message), final in load.final.items() if held == chat and not final.deleted}
        assert 0 < len(ids) <= 100 and ids <= alive and max(alive) in ids, chat
        for member, score in recent:
            assert json.loads(member)["text"] == load.final[(chat, int(score))].text
        assert int(master.hget(f"tgstack:chat:{chat}", "last_message_id")) == max(
            message for held, message in load.final if held == chat
        )
    print(f"\nreplay: {count} records + 3 bad lines in {seconds:.1f} s; {len(load.final)} distinct messages "
          f"stored, {len(published)} published, totals {totals}")  # fmt: skip


def test_any_text_is_stored_exactly_as_it_came(gateway):
    """The store sends batches as COPY text: text and objects that look like its format (tabs, newlines,
    backslashes, \\N), other scripts, and a NUL come back exactly (a NUL in an object as U+FFFD, in a text
    column as a skipped bad record); an edit and a deletion of them in the same replay apply too."""
    chat = -1009300000000
    created = "2026-11-27T10:00:00+00:00"
    texts = [
        "tab\there",
        "two\nlines\r\nand CRLF",
        "back\\slash \\N \\t \\\\N",
        "\\N",
        "",
        "emoji \U0001f600 RTL \u05e9\u05dc\u05d5\u05dd e\u0301",
        "quote ' \" ; -- $$ %s {1,2}",
    ]
    records = [{"chat_id": chat, "message_id": number, "created_at": created, "text": text,
                "raw": {"text": text, "nul": "a\u0000b", "literal": "\\u0000"},
                "media_meta": {"file_name": text}} for number, text in enumerate(texts, 1)]  # fmt: skip
    records.append({"chat_id": chat, "message_id": 50, "created_at": created, "text": "nul \u0000 here"})
    records.append(records[0] | {"type": "edit", "text": "edited\tstill tab", "edited_at": "2026-11-27T10:05:00+00:00"})
    records.append({"type": "delete", "chat_id": chat, "message_ids": [2, 3]})
    on(gateway, f"cat > {STATE}/it-texts.jsonl", user="tgstack-gateway",
       stdin="".join(json.dumps(record) + "\n" for record in records))  # fmt: skip
    forget(chat, 1)
    replay = on(gateway, f"tgstack-gateway replay {STATE}/it-texts.jsonl", user="tgstack-gateway", timeout=300)
    totals = json.loads(replay.stdout.strip().splitlines()[-1])
    assert totals["bad_records"] == 1 and "NUL character" in replay.stderr, replay.stderr[-2000:]

    found = sql(f"SELECT jsonb_agg(jsonb_build_object('id', message_id, 'text', text, 'raw', raw, 'meta', media_meta, "
                f"'deleted', deleted_at IS NOT NULL) ORDER BY message_id) FROM tgstack.messages "
                f"WHERE chat_id = {chat}")  # fmt: skip
    stored = {entry["id"]: entry for entry in json.loads(found[0][0])}
    assert sorted(stored) == list(range(1, len(texts) + 1))
    for number, text in enumerate(texts, 1):
        entry = stored[number]
        expected = "edited\tstill tab" if number == 1 else text
        assert entry["text"] == expected, (number, entry["text"], expected)
        assert entry["raw"] == {"text": text, "nul": "a\ufffdb", "literal": "\\u0000"}, number
        assert entry["meta"] == {"file_name": text}, number
        assert entry["deleted"] == (number in (2, 3)), number


def published_so_far(gateway: str, port: int) -> float:
    """tgstack_gateway_published_total of the gateway run whose metrics listen on 127.0.0.1:PORT there."""
    url = f"http://127.0.0.1:{port}/metrics"
    read = f"import urllib.request; print(urllib.request.urlopen('{url}', timeout=5).read().decode())"
    metrics = on(gateway, f'python3 -c "{read}"', check=False).stdout
    found = re.search(r"^tgstack_gateway_published_total (\S+)$", metrics, re.M)
    return float(found.group(1)) if found else 0.0


def test_nothing_acknowledged_is_lost_while_every_backend_restarts(gateway):
    """PostgreSQL, then PgBouncer, then RabbitMQ restart and Redis fails over during a synthetic run.

    Each fault comes once the gateway has shown it is flowing again after the one before (2 s of messages
    published since), and all four come while the run is still going."""
    first_chat, chats, count, rate = -1009200000000, 20, 36000, 600
    metrics_port = 19466
    settings = yaml.safe_load(on(gateway, f"cat {CONFIG}").stdout)
    synthetic = {"rate": rate, "chats": chats, "count": count, "seed": 11, "first_chat": first_chat}
    settings["source"] = {"kind": "synthetic", "synthetic": synthetic}
    settings.setdefault("pipeline", {}).update(spool_dir=f"{STATE}/it-faults-spool", retry_budget_seconds=10)
    settings["metrics"] = {"listen": f"127.0.0.1:{metrics_port}"}
    on(gateway, f"cat > {STATE}/it-faults.yml", user="tgstack-gateway", stdin=yaml.safe_dump(settings))
    on(gateway, f"rm -rf {STATE}/it-faults-spool")
    load = SyntheticLoad(chats=chats, seed=11, first_chat=first_chat)
    list(load.records(count))  # the final state the run must leave
    consumer_queue("it.gateway.faults", load.chats)
    forget(first_chat, chats)

    process = subprocess.Popen(
        ["docker", "exec", gateway, "runuser", "-u", "tgstack-gateway", "--", "tgstack-gateway", "run",
         "--config", f"{STATE}/it-faults.yml", "--env-file", SECRETS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    faults = []

    def flowing(since: float) -> None:
        """Wait until 2 s worth of messages were published after SINCE (the count then): the run goes on."""
        deadline = time.monotonic() + 120
        while published_so_far(gateway, metrics_port) < since + 2 * rate:
            if process.poll() is not None:
                ended = process.stderr.read()[-4000:]
                raise AssertionError(f"the gateway run ended (exit {process.returncode}) before every fault had "
                                     f"happened, after: {faults}; its log ends:\n{ended}")  # fmt: skip
            assert time.monotonic() < deadline, f"the gateway published nothing new for 120 s after: {faults}"
            time.sleep(0.5)

    try:
        flowing(0.0)
        for name, host, command in [
            ("PostgreSQL restart", DB_HOST, "systemctl restart postgresql@17-main"),
            ("PgBouncer restart", DB_HOST, "systemctl restart pgbouncer"),
            ("RabbitMQ restart", GATEWAY_HOST, "systemctl restart rabbitmq-server"),
            ("Redis failover", REDIS_HOSTS[1],
             f"redis-cli -p 26379 --no-auth-warning -a {SENTINEL_PASSWORD} SENTINEL FAILOVER tgstack"),
        ]:  # fmt: skip
            started = time.monotonic()
            master = redis_master().connection_pool.connection_kwargs["host"]
            on(host, command, timeout=180)
            if name == "Redis failover":  # done once the Sentinels announce another master
                while redis_master().connection_pool.connection_kwargs["host"] == master:
                    assert time.monotonic() - started < 60, "the Sentinels did not fail over within 60 s"
                    time.sleep(0.2)
            faults.append(f"{name} {time.monotonic() - started:.1f} s")
            flowing(published_so_far(gateway, metrics_port))
        assert process.poll() is None, f"the run ended before the last fault was over: {faults}"
        _out, errors = process.communicate(timeout=count / rate + 300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, errors[-3000:]
    stopped = [json.loads(line) for line in errors.splitlines() if line.startswith("{") and '"stopped' in line]
    totals = stopped[-1]["totals"]
    assert totals["received"] == count and totals["acknowledged"] == count

    stored = stored_state(first_chat, chats)
    assert_final_state(stored, load.final)
    published = drain_queue("it.gateway.faults")
    assert_every_stored_message_published(published, load.final)
    retries = sorted({entry.get("backend") for entry in map(json.loads, filter(lambda line: line.startswith("{"),
                      errors.splitlines())) if "retrying" in entry.get("message", "")} - {None})  # fmt: skip
    print(f"\nfaults: {', '.join(faults)}; records {count}, distinct messages {len(load.final)}, stored "
          f"{len(stored)}, missing 0, published {len(published)} (every stored message at its final version), "
          f"spooled batches {totals['spooled_batches']}, retried backends {retries}, totals {totals}")  # fmt: skip


def test_a_broken_configuration_stops_the_service_with_a_clear_error_and_no_restart_loop(gateway):
    on(gateway, f"cp {SECRETS} {STATE}/secrets.env.saved && grep -v TGSTACK_POSTGRES_PASSWORD "
                f"{STATE}/secrets.env.saved > {SECRETS}")  # fmt: skip
    try:
        check = on(gateway, f"tgstack-gateway check --config {CONFIG} --env-file {SECRETS}", check=False)
        assert check.returncode == 2 and "TGSTACK_POSTGRES_PASSWORD is not set" in check.stderr
        on(gateway, "systemctl restart tgstack-gateway", check=False)
        show_unit = "systemctl show tgstack-gateway -p ActiveState -p ExecMainStatus -p NRestarts -p RestartUSec"
        deadline = time.monotonic() + 60
        while not re.search(r"^ActiveState=(failed|inactive)$", show := on(gateway, show_unit).stdout, re.M):
            assert time.monotonic() < deadline, f"the gateway did not stop on its broken configuration: {show}"
            time.sleep(0.2)
        # a restart, if the unit were to make one, would come RestartSec after the exit
        restart_after = re.search(r"^RestartUSec=(\d+(?:\.\d+)?)(ms|s|min)?$", show, re.M)
        assert restart_after, show
        scale = {"ms": 0.001, "s": 1, "min": 60, None: 1}[restart_after.group(2)]
        time.sleep(float(restart_after.group(1)) * scale + 1)
        show = on(gateway, show_unit).stdout
        assert "ExecMainStatus=2" in show and "NRestarts=0" in show, show
        journal = on(gateway, "journalctl -u tgstack-gateway -n 30 --no-pager").stdout
        assert "TGSTACK_POSTGRES_PASSWORD is not set" in journal
    finally:
        on(gateway, f"cp {STATE}/secrets.env.saved {SECRETS} && rm {STATE}/secrets.env.saved && "
                    "systemctl restart tgstack-gateway")  # fmt: skip
    assert on(gateway, "systemctl is-active tgstack-gateway").stdout.strip() == "active"

    # an unreachable backend: check names it and exits 3
    settings = yaml.safe_load(on(gateway, f"cat {CONFIG}").stdout)
    settings["rabbitmq"]["url"] = re.sub(r"@[^/:]+", "@127.0.0.1", settings["rabbitmq"]["url"])
    settings["rabbitmq"]["url"] = re.sub(r":\d+/", ":5999/", settings["rabbitmq"]["url"])
    on(gateway, f"cat > {STATE}/it-unreachable.yml", user="tgstack-gateway", stdin=yaml.safe_dump(settings))
    check = on(gateway, f"tgstack-gateway check --config {STATE}/it-unreachable.yml --env-file {SECRETS}",
               user="tgstack-gateway", check=False)  # fmt: skip
    assert check.returncode == 3, check.stdout + check.stderr
    assert "rabbitmq: FAILED" in check.stderr and "postgres: ok" in check.stdout


def test_one_gateway_per_telegram_session_through_a_lease_in_redis(gateway):
    """The lease (gateway/tgstack_gateway/lock.py) on the lab's Redis master: a second holder waits
    until the first lets go, and the first then finds it lost instead of going on with the session."""
    import asyncio

    import redis.asyncio
    from tgstack_gateway.lock import LeaseLost, SessionLease

    async def scenario() -> None:
        master = redis_master()
        host, port = master.connection_pool.connection_kwargs["host"], master.connection_pool.connection_kwargs["port"]
        client = redis.asyncio.Redis(host=host, port=port, username=REDIS_APP[0], password=REDIS_APP[1])
        try:
            first = SessionLease(client, "it-session", ttl=1.5, holder="first")
            second = SessionLease(client, "it-session", ttl=1.5, holder="second")
            await client.delete(first.key)
            assert await first.try_acquire() and not await second.try_acquire()
            await first.renew()
            waits: list[str] = []
            waiting = asyncio.create_task(second.acquire(waits.append))
            await asyncio.sleep(1.2)
            assert not waiting.done() and waits and waits[0] == "first"
            await first.release()
            await asyncio.wait_for(waiting, 3)
            with pytest.raises(LeaseLost, match="held by"):
                await first.renew()
            await second.release()
        finally:
            await client.aclose()

    asyncio.run(scenario())
