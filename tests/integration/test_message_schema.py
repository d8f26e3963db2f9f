"""The message schema (roles/timescaledb/files/sql/0*.sql) on a real PostgreSQL 17 + TimescaleDB lab host.

Every test gets a fresh database, applies the eight scripts in order (apply_scripts) and works there.
The lab's TimescaleDB is Debian's Apache edition, so the community edition's continuous-aggregate path
of 004_aggregates.sql is not exercised here (test_aggregates_* say which path ran).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from labhost import PROJECT, psql, run, run_module

SQL_DIR = PROJECT / "roles" / "timescaledb" / "files" / "sql"
SCRIPTS = [
    "001_extension.sql",
    "002_schema.sql",
    "003_indexes.sql",
    "004_aggregates.sql",
    "005_functions.sql",
    "006_upserts.sql",
    "007_monitoring.sql",
    "008_staged_upserts.sql",
]
NO_TRANSACTION = "-- tgstack: no-transaction"
PSQL = ["runuser", "-u", "postgres", "--", "psql", "-X", "-v", "ON_ERROR_STOP=1"]  # inside the lab host
MESSAGE_INDEXES = {
    "messages_pkey",
    "messages_created_at_idx",
    "messages_chat_created_idx",
    "messages_sender_created_idx",
    "messages_chat_thread_idx",
    "messages_nonchannel_message_id_idx",
    "messages_text_trgm_idx",
}
CHANNEL = -1001234567890  # a supergroup/channel (marked id, -100 prefix)
PRIVATE = 4242  # a private chat with a user
GROUP = -4242  # a basic group


def copy_scripts(host: str, db: str) -> str:
    """Copy the role's schema scripts to HOST; return the directory."""
    remote = f"/var/tmp/tgstack-sql-{db}"  # not /tmp: systemd mounts a tmpfs there in the container
    run(["docker", "exec", host, "rm", "-rf", remote])
    copied = run(["docker", "cp", f"{SQL_DIR}/.", f"{host}:{remote}"])
    assert copied.returncode == 0, copied.stderr
    run(["docker", "exec", host, "chmod", "-R", "a+rX", remote])
    return remote


def apply_scripts(host: str, db: str, **options) -> dict:
    """Apply the schema scripts to DB on HOST with tgstack.hybrid.sql_scripts, as the role does."""
    remote = copy_scripts(host, db)
    result = run_module(host, "tgstack.hybrid.sql_scripts", {"path": remote, "login_db": db, **options})
    assert not result.get("failed"), result.get("msg")
    return result


def apply_scripts_with_psql(host: str, db: str) -> None:
    """Run every script again from scratch with psql, bypassing the ledger: the scripts must be re-runnable.

    Each file runs in one transaction (psql --single-transaction), except files whose first line is
    "-- tgstack: no-transaction", which run statement by statement in autocommit, as sql_scripts does.
    """
    remote = copy_scripts(host, db)
    for script in sorted(SQL_DIR.glob("*.sql")):
        first_line = script.read_text().splitlines()[0].strip()
        mode = [] if first_line == NO_TRANSACTION else ["--single-transaction"]
        done = run(["docker", "exec", host, *PSQL, "-q", *mode, "-d", db, "-f", f"{remote}/{script.name}"])
        assert done.returncode == 0, f"{script.name} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture
def schema_db(tsdb_host, fresh_database):
    apply_scripts(tsdb_host, fresh_database)
    return fresh_database


def q(host: str, db: str, sql: str) -> list[list[str]]:
    """Rows of a query as lists of strings (psql unaligned output, | separated)."""
    out = psql(host, sql, db=db)
    return [line.split("|") for line in out.splitlines()] if out else []


def one(host: str, db: str, sql: str) -> str:
    return psql(host, sql, db=db)


def lit(value: Any) -> str:
    """A JSON value as a jsonb SQL literal."""
    return "'" + json.dumps(value).replace("'", "''") + "'::jsonb"


def ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def message(chat_id: int, message_id: int, created_at: datetime, text: str, **extra: Any) -> dict[str, Any]:
    return {"chat_id": chat_id, "message_id": message_id, "created_at": ts(created_at), "text": text, **extra}


def upsert(host: str, db: str, batch: list[dict[str, Any]]) -> dict[str, int]:
    row = q(host, db, f"SELECT inserted, updated, unchanged, duplicates FROM tgstack.upsert_messages({lit(batch)})")
    return dict(zip(["inserted", "updated", "unchanged", "duplicates"], map(int, row[0]), strict=True))


def edition(host: str, db: str) -> str:
    return one(host, db, "SELECT current_setting('timescaledb.license', true)")


def test_the_eight_scripts_in_order():
    assert sorted(path.name for path in SQL_DIR.glob("*.sql")) == SCRIPTS
    for name in SCRIPTS:
        text = (SQL_DIR / name).read_text()
        assert text.startswith("--"), f"{name} has no header comment"
    # CREATE INDEX ... transaction_per_chunk / CONCURRENTLY refuse to run in a transaction block
    assert (SQL_DIR / "003_indexes.sql").read_text().splitlines()[0] == NO_TRANSACTION


def test_objects_exist(tsdb_host, schema_db):
    h, db = tsdb_host, schema_db
    tables = {row[0] for row in q(h, db, "SELECT tablename FROM pg_tables WHERE schemaname = 'tgstack'")}
    assert {"chats", "senders", "messages", "message_edits", "message_deletions", "chat_watermarks"} <= tables
    assert q(
        h, db, "SELECT column_name, time_interval FROM tgstack.hypertable_dimensions WHERE hypertable_name = 'messages'"
    ) == [["created_at", "1 day"]]
    assert one(h, db, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'messages_pkey'") == (
        "PRIMARY KEY (chat_id, message_id, created_at)"
    )
    indexes = {row[0] for row in q(h, db, "SELECT indexname FROM pg_indexes WHERE tablename = 'messages'")}
    assert indexes >= MESSAGE_INDEXES
    views = {row[0] for row in q(h, db, "SELECT viewname FROM pg_views WHERE schemaname = 'tgstack'")}
    assert {
        "hypertable_dimensions",
        "table_sizes",
        "chunk_sizes",
        "index_usage",
        "ingest_lag",
        "ingest_lag_by_chat",
    } <= views
    for aggregate in ("messages_per_minute", "messages_per_hour"):
        assert one(h, db, f"SELECT to_regclass('tgstack.{aggregate}') IS NOT NULL") == "t"
    if edition(h, db) == "apache":
        matviews = {row[0] for row in q(h, db, "SELECT matviewname FROM pg_matviews WHERE schemaname = 'tgstack'")}
        assert matviews == {"messages_per_minute", "messages_per_hour"}
    signatures = [
        "tgstack.upsert_messages(jsonb)",
        "tgstack.stage_messages()",
        "tgstack.upsert_staged_messages()",
        "tgstack.apply_message_edits(jsonb)",
        "tgstack.mark_messages_deleted(bigint,bigint[],timestamptz,timestamptz)",
        "tgstack.set_chat_watermark(bigint,bigint,timestamptz)",
        "tgstack.upsert_chats(jsonb)",
        "tgstack.upsert_senders(jsonb)",
        "tgstack.recent_messages(bigint,integer,timestamptz,boolean)",
        "tgstack.message_counts(timestamptz,timestamptz,interval,bigint)",
        "tgstack.chat_activity(interval,integer)",
        "tgstack.search_messages(text,bigint,timestamptz,integer)",
        "tgstack.chat_watermark(bigint)",
        "tgstack.refresh_message_aggregates(interval)",
    ]
    for signature in signatures:
        assert one(h, db, f"SELECT to_regprocedure('{signature}') IS NOT NULL") == "t", signature
    # every function but the refresh procedure pins its search_path; none is SECURITY DEFINER
    unpinned = q(
        h,
        db,
        "SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'tgstack'::regnamespace "
        "AND p.proname <> 'refresh_message_aggregates' "
        "AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')",
    )
    assert unpinned == []
    assert one(h, db, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'tgstack'::regnamespace AND prosecdef") == "0"


def test_ledger_applies_the_eight_once(tsdb_host, fresh_database):
    h, db = tsdb_host, fresh_database
    preview = run_module(h, "tgstack.hybrid.sql_scripts", {"path": copy_scripts(h, db), "login_db": db}, check=True)
    assert preview["changed"] and preview["would_apply"] == SCRIPTS
    assert one(h, db, "SELECT count(*) FROM pg_namespace WHERE nspname IN ('tgstack', 'tgstack_meta')") == "0"

    first = apply_scripts(h, db)
    assert first["changed"] and first["applied"] == SCRIPTS
    assert first["ran_without_transaction"] == ["003_indexes.sql"]
    assert one(h, db, "SELECT count(*) FROM tgstack_meta.sql_scripts") == "8"

    second = apply_scripts(h, db)
    assert not second["changed"] and second["applied"] == []


def test_scripts_run_again(tsdb_host, schema_db):
    h, db = tsdb_host, schema_db
    now = datetime.now(UTC)
    upsert(h, db, [message(PRIVATE, i, now - timedelta(days=i), f"m{i}") for i in range(1, 4)])
    apply_scripts_with_psql(h, db)  # every script again, on a schema that already has data and chunks
    apply_scripts_with_psql(h, db)
    assert q(h, db, "SELECT column_name, time_interval FROM tgstack.hypertable_dimensions") == [["created_at", "1 day"]]
    assert one(h, db, "SELECT count(*) FROM tgstack.messages") == "3"
    assert (
        one(
            h,
            db,
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'messages_record_edit' "
            "AND tgrelid = 'tgstack.messages'::regclass",
        )
        == "1"
    )
    assert one(h, db, "SELECT bool_and(valid) FROM tgstack.index_usage") == "t"


def test_batch_upsert_replays_never_duplicate(tsdb_host, schema_db):
    h, db = tsdb_host, schema_db
    t0 = datetime.now(UTC) - timedelta(hours=2)
    batch = [message(CHANNEL, i, t0 + timedelta(minutes=i), f"post {i}", sender_id=77) for i in range(1, 6)]
    assert upsert(h, db, batch) == {"inserted": 5, "updated": 0, "unchanged": 0, "duplicates": 0}
    for _replay in range(3):
        assert upsert(h, db, batch) == {"inserted": 0, "updated": 0, "unchanged": 5, "duplicates": 0}

    # a batch with duplicates inside: message 6 twice, and message 2 twice, once as an edit of the stored one
    edited = t0 + timedelta(hours=1)
    mixed = [
        message(CHANNEL, 6, t0 + timedelta(minutes=6), "post 6", sender_id=77),
        message(CHANNEL, 2, t0 + timedelta(minutes=2), "post 2 edited", sender_id=77, edited_at=ts(edited)),
        message(CHANNEL, 6, t0 + timedelta(minutes=6), "post 6", sender_id=77),
        message(CHANNEL, 2, t0 + timedelta(minutes=2), "post 2", sender_id=77),
    ]
    assert upsert(h, db, mixed) == {"inserted": 1, "updated": 1, "unchanged": 0, "duplicates": 2}
    for _replay in range(3):
        assert upsert(h, db, mixed) == {"inserted": 0, "updated": 0, "unchanged": 2, "duplicates": 2}
        assert upsert(h, db, batch) == {"inserted": 0, "updated": 0, "unchanged": 5, "duplicates": 0}

    assert one(h, db, "SELECT count(*), count(DISTINCT (chat_id, message_id)) FROM tgstack.messages") == "6|6"
    # the replayed original never overwrote the edit
    assert q(
        h,
        db,
        f"SELECT text, edited_at = '{ts(edited)}', edit_count FROM tgstack.messages "
        f"WHERE chat_id = {CHANNEL} AND message_id = 2",
    ) == [["post 2 edited", "t", "1"]]
    # unknown chats and senders were registered
    assert one(h, db, f"SELECT count(*) FROM tgstack.chats WHERE id = {CHANNEL}") == "1"
    assert one(h, db, "SELECT count(*) FROM tgstack.senders WHERE id = 77") == "1"


def staged_upsert(host: str, db: str, batch: list[dict[str, Any]]) -> dict[str, int]:
    """The gateway's way: stage, fill the staging table (here from a jsonb literal, the gateway uses COPY),
    upsert the staged rows; one transaction (psql -c runs its statements as one)."""
    row = q(
        host,
        db,
        "SELECT tgstack.stage_messages(); "
        "INSERT INTO pg_temp.tgstack_staged_messages "
        f"SELECT * FROM jsonb_populate_recordset(NULL::pg_temp.tgstack_staged_messages, {lit(batch)}); "
        "SELECT inserted, updated, unchanged, duplicates FROM tgstack.upsert_staged_messages()",
    )
    return dict(zip(["inserted", "updated", "unchanged", "duplicates"], map(int, row[-1]), strict=True))


def test_staged_upserts_follow_the_same_rules(tsdb_host, schema_db):
    """The staged path (008) gives what upsert_messages(jsonb) gives, call for call, on twin chats."""
    h, db = tsdb_host, schema_db
    t0 = datetime.now(UTC) - timedelta(hours=2)
    edited = t0 + timedelta(hours=1)

    def calls(chat: int) -> list[list[dict[str, Any]]]:
        batch = [message(chat, i, t0 + timedelta(minutes=i), f"post {i}", sender_id=77) for i in range(1, 6)]
        mixed = [
            message(chat, 6, t0 + timedelta(minutes=6), "post 6", sender_id=78),
            message(chat, 2, t0 + timedelta(minutes=2), "post 2 edited", sender_id=77, edited_at=ts(edited)),
            message(chat, 6, t0 + timedelta(minutes=6), "post 6", sender_id=78),
            message(chat, 2, t0 + timedelta(minutes=2), "post 2", sender_id=77),
        ]
        return [batch, batch, mixed, mixed, batch]

    twin = CHANNEL - 1
    for jsonb_call, staged_call in zip(calls(CHANNEL), calls(twin), strict=True):
        assert staged_upsert(h, db, staged_call) == upsert(h, db, jsonb_call)
    columns = "message_id, text, edited_at, edit_count, sender_id, deleted_at IS NULL"
    assert q(h, db, f"SELECT {columns} FROM tgstack.messages WHERE chat_id = {twin} ORDER BY 1") == q(
        h, db, f"SELECT {columns} FROM tgstack.messages WHERE chat_id = {CHANNEL} ORDER BY 1"
    )
    assert one(h, db, f"SELECT count(*) FROM tgstack.message_edits WHERE chat_id = {twin}") == "1"
    assert one(h, db, f"SELECT count(*) FROM tgstack.chats WHERE id = {twin}") == "1"
    assert one(h, db, "SELECT count(*) FROM tgstack.senders WHERE id IN (77, 78)") == "2"

    # two batches staged in one transaction: the second replaces the first in the staging table
    two = q(
        h,
        db,
        "SELECT tgstack.stage_messages(); "
        "INSERT INTO pg_temp.tgstack_staged_messages (chat_id, message_id, created_at) "
        f"VALUES ({twin}, 100, now()), ({twin}, 101, now()); "
        "SELECT inserted FROM tgstack.upsert_staged_messages(); "
        "SELECT tgstack.stage_messages(); "
        "INSERT INTO pg_temp.tgstack_staged_messages (chat_id, message_id, created_at) "
        f"VALUES ({twin}, 102, now()); "
        "SELECT inserted, duplicates FROM tgstack.upsert_staged_messages()",
    )
    assert two[-1] == ["1", "0"]


def test_a_staged_batch_with_a_message_without_its_key_writes_nothing(tsdb_host, schema_db):
    h, db = tsdb_host, schema_db
    before = one(h, db, "SELECT count(*) FROM tgstack.messages")
    failed = run(
        [
            "docker", "exec", h, *PSQL, "-d", db, "-c",
            "SELECT tgstack.stage_messages(); "
            "INSERT INTO pg_temp.tgstack_staged_messages (chat_id, message_id, created_at) "
            f"VALUES ({CHANNEL}, 1, now()), ({CHANNEL}, 2, NULL); "
            "SELECT * FROM tgstack.upsert_staged_messages()",
        ]
    )  # fmt: skip
    assert failed.returncode != 0
    assert "every message needs chat_id, message_id and created_at" in failed.stderr
    assert one(h, db, "SELECT count(*) FROM tgstack.messages") == before
    unstaged = run(["docker", "exec", h, *PSQL, "-d", db, "-c", "SELECT * FROM tgstack.upsert_staged_messages()"])
    assert unstaged.returncode != 0 and "nothing staged in this session" in unstaged.stderr
    assert "tgstack.stage_messages()" in unstaged.stderr


def test_edits_keep_edited_at_and_final_text(tsdb_host, schema_db):
    h, db = tsdb_host, schema_db
    created = datetime.now(UTC) - timedelta(days=3)
    upsert(h, db, [message(GROUP, 10, created, "v1"), message(GROUP, 11, created, "other")])
    e2, e3 = created + timedelta(minutes=2), created + timedelta(minutes=3)
    edits = [
        {"chat_id": GROUP, "message_id": 10, "text": "v3", "edited_at": ts(e3)},
        {"chat_id": GROUP, "message_id": 10, "text": "v2", "edited_at": ts(e2)},  # older, same batch
        {"chat_id": GROUP, "message_id": 99, "text": "never stored", "edited_at": ts(e2)},
    ]
    row = q(h, db, f"SELECT updated, unchanged, missing FROM tgstack.apply_message_edits({lit(edits)})")
    assert row == [["1", "0", "1"]]
    # the older edit arriving late, and a replay, change nothing
    late = [{"chat_id": GROUP, "message_id": 10, "text": "v2", "edited_at": ts(e2)}]
    assert q(h, db, f"SELECT * FROM tgstack.apply_message_edits({lit(late)})") == [["0", "1", "0"]]
    assert q(h, db, f"SELECT * FROM tgstack.apply_message_edits({lit(edits)})") == [["0", "1", "1"]]
    # a newer edit with the message date known (finds the row in its chunk)
    e4 = created + timedelta(minutes=4)
    hinted = [{"chat_id": GROUP, "message_id": 10, "created_at": ts(created), "text": "v4", "edited_at": ts(e4)}]
    assert q(h, db, f"SELECT * FROM tgstack.apply_message_edits({lit(hinted)})") == [["1", "0", "0"]]
    # and an edit through the batch upsert (a MessageEdited event carries the whole message)
    e5 = created + timedelta(minutes=5)
    assert upsert(h, db, [message(GROUP, 10, created, "v5", edited_at=ts(e5))])["updated"] == 1

    assert q(
        h,
        db,
        f"SELECT text, edited_at = '{ts(e5)}', edit_count, created_at = '{ts(created)}' "
        f"FROM tgstack.messages WHERE chat_id = {GROUP} AND message_id = 10",
    ) == [["v5", "t", "3", "t"]]
    history = q(h, db, "SELECT old_text, new_text FROM tgstack.message_edits WHERE message_id = 10 ORDER BY edited_at")
    assert history == [["v1", "v3"], ["v3", "v4"], ["v4", "v5"]]
    assert q(
        h, db, f"SELECT text, edited_at IS NULL FROM tgstack.messages WHERE chat_id = {GROUP} AND message_id = 11"
    ) == [["other", "t"]]
    bad = 'SELECT tgstack.apply_message_edits(\'[{"chat_id": 1, "message_id": 1}]\')'
    failed = run(["docker", "exec", h, *PSQL, "-d", db, "-c", bad])
    assert failed.returncode != 0 and "needs chat_id, message_id and edited_at" in failed.stderr


def test_deletions_mark_rows(tsdb_host, schema_db):
    h, db = tsdb_host, schema_db
    t0 = datetime.now(UTC) - timedelta(hours=5)
    upsert(
        h,
        db,
        [
            message(CHANNEL, 1, t0, "channel 1"),
            message(CHANNEL, 2, t0, "channel 2"),
            message(CHANNEL, 500, t0, "channel 500"),  # same id as a private message: never hit without chat id
            message(PRIVATE, 500, t0, "private 500"),
            message(GROUP, 501, t0, "group 501"),
            message(PRIVATE + 1, 777, t0, "two accounts?"),
            message(GROUP - 1, 777, t0, "two accounts?"),
        ],
    )

    def deleted(chat_id: int | None, ids: list[int]) -> list[str]:
        chat = "NULL" if chat_id is None else str(chat_id)
        array = "ARRAY[" + ",".join(map(str, ids)) + "]::bigint[]"
        return q(h, db, f"SELECT * FROM tgstack.mark_messages_deleted({chat}, {array})")[0]

    assert deleted(CHANNEL, [1, 3]) == ["1", "0", "1", "0"]  # marked, already_deleted, not_found, ambiguous
    assert deleted(CHANNEL, [1]) == ["0", "1", "0", "0"]  # replayed: deleted_at kept
    assert deleted(None, [500, 501, 777, 9999]) == ["2", "0", "1", "1"]
    marked = q(h, db, "SELECT chat_id, message_id FROM tgstack.messages WHERE deleted_at IS NOT NULL ORDER BY 1, 2")
    assert marked == [[str(CHANNEL), "1"], [str(GROUP), "501"], [str(PRIVATE), "500"]]
    assert one(h, db, "SELECT count(*) FROM tgstack.messages") == "7"  # rows are kept
    assert q(
        h,
        db,
        "SELECT chat_id IS NULL, message_id, matched FROM tgstack.message_deletions "
        "WHERE chat_id IS NULL ORDER BY message_id",
    ) == [["t", "500", "1"], ["t", "501", "1"], ["t", "777", "0"], ["t", "9999", "0"]]
    # deleted messages drop out of recent_messages unless asked for
    assert one(h, db, f"SELECT count(*) FROM tgstack.recent_messages({CHANNEL})") == "2"
    assert one(h, db, f"SELECT count(*) FROM tgstack.recent_messages({CHANNEL}, 50, NULL, true)") == "3"


def test_aggregates_count_by_created_at(tsdb_host, schema_db):
    h, db = tsdb_host, schema_db
    base = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    received = datetime(2025, 3, 5, 0, 0, tzinfo=UTC)  # far from created_at: buckets must not follow it
    batch = []
    # chat CHANNEL: 3 messages in 10:00, 2 in 10:01, 1 in 11:30; chat PRIVATE: 4 in 10:00
    for i, minute in enumerate([0, 0, 0, 1, 1, 90]):
        created = base + timedelta(minutes=minute, seconds=i)
        batch.append(message(CHANNEL, i + 1, created, "x", received_at=ts(received)))
    batch += [message(PRIVATE, 100 + i, base + timedelta(seconds=10 * i), "y") for i in range(4)]
    upsert(h, db, batch)

    license_ = edition(h, db)
    if license_ == "apache":
        # plain materialized views with a unique index: a concurrent refresh works
        psql(h, "REFRESH MATERIALIZED VIEW CONCURRENTLY tgstack.messages_per_minute", db=db)
        psql(h, "REFRESH MATERIALIZED VIEW CONCURRENTLY tgstack.messages_per_hour", db=db)
    else:
        psql(h, "CALL tgstack.refresh_message_aggregates()", db=db)
    print(f"\naggregates path exercised: TimescaleDB license = {license_}")

    per_minute = q(
        h,
        db,
        "SELECT chat_id, to_char(bucket AT TIME ZONE 'UTC', 'HH24:MI'), messages "
        "FROM tgstack.messages_per_minute ORDER BY 1, 2",
    )
    assert per_minute == [
        [str(CHANNEL), "10:00", "3"],
        [str(CHANNEL), "10:01", "2"],
        [str(CHANNEL), "11:30", "1"],
        [str(PRIVATE), "10:00", "4"],
    ]
    per_hour = q(
        h,
        db,
        "SELECT chat_id, to_char(bucket AT TIME ZONE 'UTC', 'HH24:MI'), messages "
        "FROM tgstack.messages_per_hour ORDER BY 1, 2",
    )
    assert per_hour == [[str(CHANNEL), "10:00", "5"], [str(CHANNEL), "11:00", "1"], [str(PRIVATE), "10:00", "4"]]

    # more messages, refreshed through the edition-independent procedure
    upsert(h, db, [message(PRIVATE, 200 + i, base + timedelta(minutes=61), "z") for i in range(3)])
    psql(h, "CALL tgstack.refresh_message_aggregates()", db=db)
    assert q(h, db, f"SELECT messages FROM tgstack.messages_per_hour WHERE chat_id = {PRIVATE} ORDER BY bucket") == [
        ["4"],
        ["3"],
    ]
    # the view can be read while it is refreshed concurrently (the unique index it needs is there)
    if license_ == "apache":
        assert (
            one(
                h,
                db,
                "SELECT count(*) FROM pg_indexes WHERE schemaname = 'tgstack' "
                "AND indexname LIKE 'messages_per_%_chat_bucket_key'",
            )
            == "2"
        )


def test_monitoring_views_answer(tsdb_host, schema_db):
    h, db = tsdb_host, schema_db
    now = datetime.now(UTC)
    # 3 days of messages (3 chunks), received a few seconds after they were written
    batch = [
        message(
            CHANNEL,
            i,
            now - timedelta(hours=i, minutes=30),
            f"m{i}",
            sender_id=1,
            received_at=ts(now - timedelta(seconds=2)),
        )
        for i in range(0, 60)
    ]
    upsert(h, db, batch)
    upsert(
        h, db, [message(PRIVATE, 1, now - timedelta(seconds=30), "hello", received_at=ts(now - timedelta(seconds=29)))]
    )
    psql(h, f"SELECT count(*) FROM tgstack.recent_messages({CHANNEL}, 5)", db=db)
    psql(h, f"SELECT * FROM tgstack.messages WHERE chat_id = {CHANNEL} AND message_id = 3", db=db)

    usage = q(
        h,
        db,
        "SELECT indexrelname, chunk_indexes, idx_scan, index_bytes FROM tgstack.index_usage WHERE relname = 'messages'",
    )
    assert {row[0] for row in usage} == MESSAGE_INDEXES
    chunks = int(one(h, db, "SELECT count(*) FROM tgstack.chunk_sizes WHERE hypertable = 'tgstack.messages'"))
    assert chunks >= 3
    assert all(int(row[1]) == chunks and int(row[3]) > 0 for row in usage)
    assert sum(int(row[2]) for row in usage) > 0  # the lookups above were counted on the chunk indexes

    sizes = {
        row[0]: row[1:] for row in q(h, db, "SELECT table_name, kind, chunks, total_bytes FROM tgstack.table_sizes")
    }
    assert sizes["tgstack.messages"][0] == "hypertable" and int(sizes["tgstack.messages"][1]) == chunks
    assert all(int(value[2]) > 0 for value in sizes.values())
    assert int(one(h, db, "SELECT min(total_bytes) FROM tgstack.chunk_sizes")) > 0

    lag = q(
        h,
        db,
        "SELECT extract(epoch FROM since_last_stored), extract(epoch FROM since_last_received), "
        "messages_last_minute, active_chats_1day FROM tgstack.ingest_lag",
    )[0]
    assert 0 <= float(lag[0]) < 60 and 0 <= float(lag[1]) < 90
    assert lag[2:] == ["25", "2"]  # all were stored just now, but the views only look at the last day: 24 + 1
    by_chat = {
        row[0]: row[1:]
        for row in q(
            h,
            db,
            "SELECT chat_id, messages_last_minute, "
            "round(extract(epoch FROM receive_delay_5min)) "
            "FROM tgstack.ingest_lag_by_chat",
        )
    }
    assert by_chat[str(PRIVATE)] == ["1", "1"]


def test_functions_return_expected_rows(tsdb_host, schema_db):
    h, db = tsdb_host, schema_db
    # 10 minutes past an hour, 3 to 4 hours ago: messages at :10, :11, :15 and 70 minutes later
    base = (datetime.now(UTC) - timedelta(hours=4)).replace(minute=10, second=0, microsecond=0)
    upsert(
        h,
        db,
        [
            message(CHANNEL, 1, base, "Olá mundo, 100% certo", sender_id=1),
            message(CHANNEL, 2, base + timedelta(minutes=1), "segunda mensagem", sender_id=2, thread_id=1),
            message(CHANNEL, 3, base + timedelta(minutes=70), "terceira: mundo_novo", sender_id=1),
            message(PRIVATE, 1, base + timedelta(minutes=5), "oi mundo", sender_id=PRIVATE),
        ],
    )
    recent = q(h, db, f"SELECT message_id FROM tgstack.recent_messages({CHANNEL}, 2)")
    assert recent == [["3"], ["2"]]
    before = q(
        h, db, f"SELECT message_id FROM tgstack.recent_messages({CHANNEL}, 10, '{ts(base + timedelta(minutes=1))}')"
    )
    assert before == [["1"]]

    counts = q(
        h,
        db,
        f"SELECT to_char(bucket AT TIME ZONE 'UTC', 'HH24:MI'), chat_id, messages "
        f"FROM tgstack.message_counts('{ts(base - timedelta(hours=1))}', now(), '1 hour')",
    )
    later = base + timedelta(minutes=70)
    assert counts == [
        [base.strftime("%H:00"), str(CHANNEL), "2"],
        [base.strftime("%H:00"), str(PRIVATE), "1"],
        [later.strftime("%H:00"), str(CHANNEL), "1"],
    ]
    one_chat = q(h, db, f"SELECT sum(messages) FROM tgstack.message_counts('{ts(base)}', now(), '1 day', {PRIVATE})")
    assert one_chat == [["1"]]

    upsert_chats = f"""SELECT * FROM tgstack.upsert_chats({
        lit(
            [
                {"id": CHANNEL, "chat_type": "channel", "title": "Notícias", "username": "noticias"},
                {"id": PRIVATE, "chat_type": "private", "title": "Ana"},
                {"id": 1, "chat_type": "private"},
            ]
        )
    })"""
    assert q(h, db, upsert_chats) == [["1", "2", "0"]]  # 1 new; CHANNEL and PRIVATE were registered by the upsert
    assert q(h, db, upsert_chats) == [["0", "0", "3"]]
    senders = [{"id": 1, "sender_type": "user", "display_name": "Ana"}, {"id": 2}]
    assert q(h, db, f"SELECT * FROM tgstack.upsert_senders({lit(senders)})") == [["0", "1", "1"]]
    # in a batch the last entry of an id wins; NULL or a missing key keeps what is stored
    senders = [{"id": 1, "username": "x"}, {"id": 1, "username": "ana"}, {"id": 3, "sender_type": "bot"}]
    assert q(h, db, f"SELECT * FROM tgstack.upsert_senders({lit(senders)})") == [["1", "1", "0"]]
    assert q(h, db, "SELECT sender_type, username, display_name FROM tgstack.senders WHERE id = 1") == [
        ["user", "ana", "Ana"]
    ]

    activity = q(h, db, "SELECT chat_id, title, messages, senders FROM tgstack.chat_activity('1 day')")
    assert activity == [[str(CHANNEL), "Notícias", "3", "2"], [str(PRIVATE), "Ana", "1", "1"]]

    def search(pattern: str) -> list[str]:
        sql = f"SELECT chat_id || ':' || message_id FROM tgstack.search_messages('{pattern}')"
        return [row[0] for row in q(h, db, sql)]

    assert search("MUNDO") == [f"{CHANNEL}:3", f"{PRIVATE}:1", f"{CHANNEL}:1"]
    assert search("100%") == [f"{CHANNEL}:1"]  # % and _ are matched literally
    assert search("o_n") == [f"{CHANNEL}:3"]  # "mundo_novo"
    assert search("a_m") == []  # an unescaped _ would match "segunda mensagem"
    assert one(h, db, f"SELECT count(*) FROM tgstack.search_messages('mundo', {PRIVATE})") == "1"

    assert one(h, db, f"SELECT tgstack.chat_watermark({CHANNEL})") == "0"
    assert one(h, db, f"SELECT tgstack.set_chat_watermark({CHANNEL}, 3, '{ts(base)}')") == "3"
    assert one(h, db, f"SELECT tgstack.set_chat_watermark({CHANNEL}, 2)") == "3"  # never moves back
    assert one(h, db, f"SELECT tgstack.chat_watermark({CHANNEL})") == "3"
    assert one(h, db, f"SELECT tgstack.is_channel_id({CHANNEL}), tgstack.is_channel_id({GROUP})") == "t|f"


def test_batch_upsert_of_10000_messages(tsdb_host, schema_db):
    """Timing only (printed, not asserted): one call with 10,000 synthetic messages, then its replay."""
    h, db = tsdb_host, schema_db
    now = datetime.now(UTC)
    batch = [
        message(
            -1000000000000 - chat,
            i,
            now - timedelta(seconds=10 * i + chat),
            "synthetic message text " * 8,
            sender_id=1000 + i % 50,
            raw={"id": i, "peer": chat},
        )
        for chat in range(10)
        for i in range(1000)
    ]
    remote = f"/var/tmp/tgstack-batch-{db}.json"
    payload = json.dumps(batch)
    written = run(["docker", "exec", "-i", h, "sh", "-c", f"cat > {remote} && chmod a+r {remote}"], input=payload)
    assert written.returncode == 0, written.stderr
    call = "SELECT inserted, updated, unchanged FROM tgstack.upsert_messages(:'batch');"
    timings = []
    for _replay in range(2):
        started = time.monotonic()
        script = f"\\timing on\n\\set batch `cat {remote}`\n{call}\n"
        done = run(["docker", "exec", "-i", h, *PSQL, "-At", "-d", db, "-f", "-"], input=script)
        wall = time.monotonic() - started
        assert done.returncode == 0, done.stderr
        server_ms = float(re.search(r"Time: ([\d.]+) ms", done.stdout).group(1))
        counts = re.search(r"^\d+\|\d+\|\d+$", done.stdout, re.MULTILINE).group(0)
        timings.append((counts, server_ms, wall))
    run(["docker", "exec", h, "rm", "-f", remote])
    assert timings[0][0] == "10000|0|0"
    assert timings[1][0] == "0|0|10000"
    print(
        f"\nbatch upsert of 10,000 messages ({len(payload) / 1e6:.1f} MB JSON): "
        f"first {timings[0][1]:.0f} ms in psql, {timings[0][2]:.2f} s with docker exec; "
        f"replay {timings[1][1]:.0f} ms, {timings[1][2]:.2f} s"
    )
    assert one(h, db, "SELECT count(*) FROM tgstack.messages") == "10000"
