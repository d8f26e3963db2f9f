"""What an application and an operator notice on a host with PgBouncer in front of PostgreSQL."""

from __future__ import annotations

import json
import os
import shlex

import testinfra.utils.ansible_runner
from bouncer import AUTH_FILE, INI

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts(
    "pgbouncer"
)


def test_service_is_active_and_enabled(host):
    unit = host.service("pgbouncer")
    assert unit.is_running
    assert unit.is_enabled


def test_listens_on_the_configured_address_only(host, bouncer):
    listening = {
        address
        for address in host.socket.get_listening_sockets()
        if address.startswith(("tcp://", "tcp6://")) and address.endswith(f":{bouncer.port}")
    }
    assert listening == {f"tcp://127.0.0.1:{bouncer.port}"}
    assert host.socket(f"unix:///var/run/postgresql/.s.PGSQL.{bouncer.port}").is_listening


def test_settings_in_effect(bouncer):
    config = bouncer.show_config()
    assert config["pool_mode"] == "transaction"
    assert config["auth_type"] == "scram-sha-256"
    assert int(config["max_prepared_statements"]) > 0
    assert config["server_login_retry"] in {"1", "1s"}, config["server_login_retry"]
    assert int(config["default_pool_size"]) == int(bouncer.vars["pgbouncer_default_pool_size"])


def test_app_role_connects_through_pgbouncer_with_scram(bouncer):
    result = bouncer.login(bouncer.app["name"], bouncer.app["password"], PGREQUIREAUTH="scram-sha-256")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == bouncer.app["name"]
    # PgBouncer logged in to PostgreSQL as the same role, passing the client's SCRAM proof on
    through = bouncer.login(
        bouncer.app["name"],
        bouncer.app["password"],
        "SELECT usename || ' ' || coalesce(host(client_addr), 'local') "
        "FROM pg_stat_activity WHERE pid = pg_backend_pid()",
    )
    assert through.rc == 0, through.stderr
    assert through.stdout.strip() == f"{bouncer.app['name']} 127.0.0.1"


def test_wrong_password_is_refused_clearly(bouncer):
    result = bouncer.login(bouncer.app["name"], bouncer.app["password"] + "x")
    assert result.rc != 0
    # PgBouncer's own words for a failed SCRAM exchange
    assert "FATAL:  SASL authentication failed" in result.stderr, result.stderr


def test_unknown_user_and_superuser_are_refused(bouncer):
    superuser = bouncer.login("postgres", "any-password")
    assert superuser.rc != 0
    unknown = bouncer.login("nobody_here", "whatever")
    assert unknown.rc != 0
    assert "FATAL:  no such user" in unknown.stderr, unknown.stderr
    # the auth function never hands out a superuser's secret
    assert bouncer.sql("SELECT count(*) FROM pgbouncer.get_auth('postgres')", bouncer.database) == "0"


def test_auth_function_is_pinned_and_private(bouncer):
    row = bouncer.sql(
        "SELECT p.prosecdef, array_to_string(p.proconfig, ';'), pg_get_userbyid(p.proowner), "
        "has_function_privilege('public', p.oid, 'EXECUTE'), "
        f"has_function_privilege('{bouncer.app['name']}', p.oid, 'EXECUTE') "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'pgbouncer' AND p.proname = 'get_auth'",
        bouncer.database,
    )
    assert row == "t|search_path=pg_catalog, pg_temp|postgres|f|f", row
    denied = bouncer.login(bouncer.app["name"], bouncer.app["password"], "SELECT * FROM pgbouncer.get_auth('postgres')")
    assert denied.rc != 0 and "permission denied" in denied.stderr, denied.stderr


def test_protocol_level_prepared_statements_in_transaction_mode(host, bouncer):
    def parse_counts() -> tuple[int, int, int]:
        header, *rows = (line.split("|") for line in bouncer.console("SHOW STATS", header=True).splitlines())
        columns = ("total_client_parse_count", "total_server_parse_count", "total_bind_count")
        return tuple(sum(int(row[header.index(c)]) for row in rows if row[0] == bouncer.database) for c in columns)

    script = bouncer.put_script("prepared_statements.py")
    before = parse_counts()
    dsn = f"host=127.0.0.1 port={bouncer.port} dbname={bouncer.database} user={bouncer.app['name']}"
    password = shlex.quote(bouncer.app["password"])
    run = host.run(f"PGPASSWORD={password} python3 {script} {shlex.quote(dsn)} 10 {bouncer.port}")
    assert run.rc == 0, run.stderr
    summary = json.loads(run.stdout)
    after = parse_counts()
    client_parses, server_parses, binds = (a - b for a, b in zip(after, before, strict=True))
    print(f"prepared statements: {summary}; parses client {client_parses} server {server_parses}; binds {binds}")
    assert summary["wrong"] == 0 and summary["executed"] == 2 * 10 * 3 * 2
    # every client prepared its 3 statements once (psycopg names them; 4 clients) and bound them each time
    assert client_parses == 4 * 3, "psycopg did not use named prepared statements"
    assert binds >= summary["executed"]
    # after RECONNECT the same client statements ran on new server connections: PgBouncer prepared
    # them there again (3 distinct statements, at least twice each)
    assert server_parses >= 2 * 3


def test_console_users(bouncer):
    admin = bouncer.vars["pgbouncer_admin_users"][0]
    stats = bouncer.vars["pgbouncer_stats_users"][0]
    pools = bouncer.login(admin["name"], admin["password"], "SHOW POOLS", db="pgbouncer")
    assert pools.rc == 0 and bouncer.database in pools.stdout, pools.stderr
    shown = bouncer.login(stats["name"], stats["password"], "SHOW STATS", db="pgbouncer")
    assert shown.rc == 0 and bouncer.database in shown.stdout, shown.stderr
    refused = bouncer.login(stats["name"], stats["password"], "PAUSE", db="pgbouncer")
    assert refused.rc != 0 and "admin access needed" in refused.stderr, refused.stderr
    wrong = bouncer.login(admin["name"], admin["password"] + "x", "SHOW POOLS", db="pgbouncer")
    assert wrong.rc != 0 and "SASL authentication failed" in wrong.stderr, wrong.stderr


def test_secret_files_are_private(host):
    for path in (AUTH_FILE, INI):
        secret = host.file(path)
        assert (secret.user, secret.group, secret.mode) == ("root", "postgres", 0o640), path


def test_no_password_in_process_list_or_world_readable_files(host, bouncer):
    passwords = [bouncer.vars["pgbouncer_auth_user_password"], bouncer.app["password"]]
    passwords += [user["password"] for user in bouncer.vars["pgbouncer_admin_users"]]
    passwords += [user["password"] for user in bouncer.vars["pgbouncer_stats_users"]]
    processes = host.check_output("ps -eo args")
    for password in passwords:
        assert password not in processes
        found = host.run(
            f"grep -rlF -- {shlex.quote(password)} /etc /usr/local /lib/systemd /var/tmp /var/log /run 2>/dev/null"
        ).stdout.split()
        readable = [path for path in found if host.file(path).mode & 0o004]
        assert not readable, f"a password is in world-readable files: {readable}"
    assert host.file(AUTH_FILE).contains(bouncer.vars["pgbouncer_auth_user_password"])


def test_the_app_role_writes_the_message_schema_through_pgbouncer_and_may_not_delete(bouncer):
    """timescaledb_schema_writers: the gateway's rights on schema tgstack, including a chunk created by the
    write itself (a day no row had before), and nothing more: DELETE is refused."""
    batch = json.dumps([{"chat_id": -1009990000000, "message_id": 1, "created_at": "2031-03-04T05:06:07+00:00",
                         "text": "grants"}])  # fmt: skip
    upsert = bouncer.login(bouncer.app["name"], bouncer.app["password"],
                           f"SELECT inserted + unchanged FROM tgstack.upsert_messages('{batch}'::jsonb)")  # fmt: skip
    assert upsert.rc == 0 and upsert.stdout.strip() == "1", upsert.stderr
    mark = "SELECT marked + already_deleted FROM tgstack.mark_messages_deleted(-1009990000000, '{1}')"
    marked = bouncer.login(bouncer.app["name"], bouncer.app["password"], mark)
    assert marked.rc == 0 and marked.stdout.strip() == "1", marked.stderr
    delete = bouncer.login(bouncer.app["name"], bouncer.app["password"],
                           "DELETE FROM tgstack.messages WHERE chat_id = -1009990000000")  # fmt: skip
    assert delete.rc != 0 and "permission denied" in delete.stderr
