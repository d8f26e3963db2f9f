"""What an operator checks on a converged TimescaleDB host."""

from __future__ import annotations

import os

import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts(
    "timescaledb"
)


def test_service_is_active_and_enabled(host, server):
    unit = host.service("postgresql@17-main")
    assert unit.is_running
    assert unit.is_enabled


def test_listens_only_where_configured(host, server):
    listening = {
        address
        for address in host.socket.get_listening_sockets()
        if address.startswith(("tcp://", "tcp6://")) and address.endswith(f":{server.port}")
    }
    if server.tcp_host == "127.0.0.1":
        # localhost: every loopback address the host has (Docker gives containers ::1 only with IPv6 on)
        has_ipv6_loopback = host.run("ip -6 addr show dev lo | grep -q 'inet6 ::1/128'").rc == 0
        expected = {f"tcp://127.0.0.1:{server.port}"} | ({f"tcp://::1:{server.port}"} if has_ipv6_loopback else set())
    else:
        expected = {f"tcp://{server.tcp_host}:{server.port}"}
    assert listening == expected


def test_timescaledb_extension_in_every_database(server):
    for database in server.vars["timescaledb_databases"]:
        version = server.sql("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'", database["name"])
        assert version.startswith("2."), f"no timescaledb extension in {database['name']}"


def test_requested_extensions_exist(server):
    for database in server.vars["timescaledb_databases"]:
        for extension in database.get("extensions", []):
            found = server.sql(f"SELECT count(*) FROM pg_extension WHERE extname = '{extension}'", database["name"])
            assert found == "1", f"extension {extension} missing in {database['name']}"


def test_preloaded_and_scram_only(server):
    assert "timescaledb" in server.sql("SHOW shared_preload_libraries")
    assert server.sql("SHOW password_encryption") == "scram-sha-256"
    methods = server.sql("SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE error IS NULL ORDER BY 1")
    assert set(methods.split()) <= {"peer", "scram-sha-256", "reject"}


def test_app_roles_log_in_with_scram_over_tcp(server):
    for role in server.login_roles:
        stored = server.sql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role['name']}'")
        assert stored.startswith("SCRAM-SHA-256$4096:")
        result = server.tcp_login(role["name"], role["password"], server.database_for(role["name"]))
        assert result.rc == 0, result.stderr
        assert result.stdout.strip() == role["name"]


def test_wrong_password_is_refused(server):
    role = server.login_roles[0]
    result = server.tcp_login(role["name"], role["password"] + "x", server.database_for(role["name"]))
    assert result.rc != 0
    assert "password authentication failed" in result.stderr


def test_md5_only_client_is_refused(server):
    """A client that insists on md5 gets no md5 challenge, and an md5-stored password cannot log in."""
    role = server.login_roles[0]
    database = server.database_for(role["name"])
    md5_client = server.tcp_login(role["name"], role["password"], database, PGREQUIREAUTH="md5")
    assert md5_client.rc != 0
    assert "SASL" in md5_client.stderr

    # same group memberships as the app role, so that pg_hba lets it reach the password check
    in_role = f" IN ROLE {', '.join(role['member_of'])}" if role.get("member_of") else ""
    server.sql(
        "SET password_encryption = 'md5'; DROP ROLE IF EXISTS tgstack_md5_probe; "
        f"CREATE ROLE tgstack_md5_probe LOGIN PASSWORD 'md5-probe-pw'{in_role}"
    )
    try:
        assert server.sql("SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'tgstack_md5_probe'") == "md5"
        result = server.tcp_login("tgstack_md5_probe", "md5-probe-pw", database)
        assert result.rc != 0
        assert "password authentication failed" in result.stderr
    finally:
        server.sql("DROP ROLE tgstack_md5_probe")


def test_tuning_is_in_effect(server):
    expected = server.vars["tgstack_test_expected_settings"]
    for name, value in expected.items():
        unit = server.sql(f"SELECT coalesce(unit, '') FROM pg_settings WHERE name = '{name}'")
        if unit.endswith("B"):
            same = server.sql(f"SELECT pg_size_bytes(current_setting('{name}')) = pg_size_bytes('{value}')")
        else:
            same = server.sql(f"SELECT current_setting('{name}') = '{value}'")
        assert same == "t", f"{name} is {server.sql(f'SHOW {name}')}, expected {value}"


def test_no_plaintext_password_in_server_log(host, server):
    log = host.file("/var/log/postgresql/postgresql-17-main.log").content_string
    for role in server.vars["timescaledb_roles"]:
        if "password" in role:
            assert role["password"] not in log
    if server.vars.get("timescaledb_settings", {}).get("log_statement") == "all":
        # every statement is logged here, so the role's ALTER/CREATE ROLE must be there, with a verifier
        assert "SCRAM-SHA-256$4096:" in log
