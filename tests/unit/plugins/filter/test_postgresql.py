# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.tgstack.hybrid.plugins.filter.postgresql import (
    FilterModule,
    _password_bytes,
    _saslprep_or_none,
    pg_hba_problems,
    pg_memory_problems,
    scram_sha256_verifier,
    timescaledb_tune,
)

# ---------------------------------------------------------------------------
# SCRAM-SHA-256
# ---------------------------------------------------------------------------

# Verifiers written by a real server (PostgreSQL 15.18, Debian 12, UTF8
# database) for:  SET password_encryption = 'scram-sha-256';
#                 CREATE ROLE r LOGIN PASSWORD '<password>';
#                 SELECT rolpassword FROM pg_authid WHERE rolname = 'r';
# The comment on each line says which SASLprep path the password takes.
SERVER_VECTORS = [
    pytest.param(
        "pencil",
        "SCRAM-SHA-256$4096:aawb1IKg7T8uVqpRW5L0uQ==$A40yBLnX8Ag3YZmB/s3KN8+VSuBqMXZ14vbfRWu62es="
        ":7ElpIDX8EIOu205LCjvBYueq3+3xITAesiq6CIeHEtk=",
        id="ascii",
    ),
    # U+FB01 (fi ligature) -> "fi" by NFKC, U+00A0 -> space, U+00AD -> nothing.
    pytest.param(
        "\ufb01\u00a0pencil\u00ad",
        "SCRAM-SHA-256$4096:qnyMy1YQD6xKpFansmW2iw==$F3SRHS/60MZPUhI0oTKQnmydRNV31rGIo0dqO9lIz6Q="
        ":CiZ1FFsJTdmU+YaHQO37MCD64YoQLyl/+7XXxO7ynKk=",
        id="saslprep-maps-and-normalizes",
    ),
    # U+E000 is private use (prohibited): the raw UTF-8 bytes are hashed.
    pytest.param(
        "\ufb01pencil\ue000",
        "SCRAM-SHA-256$4096:iKp678t7iWYu8YJ4mtVpPQ==$FEQ2FGGeXBVyMjZf1hgvsR09wIww3yoXtcSAv9modBU="
        ":eieKzs3QJDPjLXKihdnIH9Z9cGDu+punZhiVoj+XxMU=",
        id="prohibited-raw-bytes",
    ),
    # Hebrew + ligature: a right-to-left string with a left-to-right
    # character breaks the bidi rule, raw bytes are hashed.
    pytest.param(
        "\u05d0\ufb01",
        "SCRAM-SHA-256$4096:R3a3ywbp8O3NAGK2CcvxgQ==$qTSxlnwUzB5/bgXIqU2p84tG+yE9z6KuhPJ6oNraM64="
        ":TTI0ia9Q/gKI4OvGcOAIKKhwyz9CvH0Zt5L4Yr78hT8=",
        id="bidi-violation-raw-bytes",
    ),
    # U+0221 was unassigned in Unicode 3.2 (table A.1): raw bytes.
    pytest.param(
        "\ufb01\u0221",
        "SCRAM-SHA-256$4096:vvBn6zFBA8C46786dfA0Rg==$UTQSFFJ0vIJEYwA7lCpTjTkUV4E2bePREQJW0nofwGE="
        ":27fUGRu7lSyq+EQkPt3l+By6/6etgwWtiClk6l3bHnI=",
        id="unassigned-raw-bytes",
    ),
    # PostgreSQL quirk: the bidi check runs before NFKC, so U+2122 (TM,
    # bidi class ON) passes although it becomes "TM" (class L).  A strict
    # RFC 4013 implementation would fall back to raw bytes here.
    pytest.param(
        "\u05d0\u2122\u05d0",
        "SCRAM-SHA-256$4096:/GXew3RvApIJDcVWyBJioQ==$QQDku6ow/Q59Rx3rYBmN02qvzVD7hKtEbcaN391ZLxw="
        ":ikRcmZ0mZjNqDQ/Kuvr9YrOx30Pye9ZPjdPAH+HB/0I=",
        id="bidi-checked-before-nfkc",
    ),
]


def _salt_of(verifier: str) -> str:
    return verifier.split("$")[1].split(":")[1]


@pytest.mark.parametrize(("password", "verifier"), SERVER_VECTORS)
def test_server_verifier_is_kept_when_password_matches(password: str, verifier: str) -> None:
    assert scram_sha256_verifier(password, current=verifier) == verifier


@pytest.mark.parametrize(("password", "verifier"), SERVER_VECTORS)
def test_recomputing_with_server_salt_is_byte_identical(password: str, verifier: str) -> None:
    assert scram_sha256_verifier(password, salt=_salt_of(verifier)) == verifier


@pytest.mark.parametrize(("password", "verifier"), SERVER_VECTORS)
def test_server_verifier_is_replaced_for_another_password(password: str, verifier: str) -> None:
    fresh = scram_sha256_verifier(password + "x", current=verifier)
    assert fresh != verifier
    assert scram_sha256_verifier(password + "x", current=fresh) == fresh


def test_invalid_utf8_password_hashes_raw_bytes() -> None:
    # Verified by login: this verifier was stored with ALTER ROLE and psql
    # then authenticated over TCP with PGPASSWORD set to these raw bytes.
    password = b"\xef\xac\x81pencil\xff".decode("utf-8", "surrogateescape")
    assert _password_bytes(password) == b"\xef\xac\x81pencil\xff"
    assert scram_sha256_verifier(password, salt="c2FsdHNhbHRzYWx0c2FsdA==") == (
        "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$T5YBT12tL9u0z/mQ/hOFg5b+U1OZIGq+KMM+nO2mszY="
        ":MAAl7iqybB7SG7nIX0JI24/Jl2IhQ9u0dQwJZ6ZMb40="
    )


def test_rfc7677_exchange_validates_against_our_keys() -> None:
    # RFC 7677 section 3: user "user", password "pencil".
    verifier = scram_sha256_verifier("pencil", salt="W22ZaJ0SNY7soEsUEjb6gQ==")
    stored_key, server_key = (base64.b64decode(key) for key in verifier.split("$")[2].split(":"))
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth_message = f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r={nonce}"
    client_signature = hmac.new(stored_key, auth_message.encode(), hashlib.sha256).digest()
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key
    server_signature = hmac.new(server_key, auth_message.encode(), hashlib.sha256).digest()
    assert base64.b64encode(server_signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


@pytest.mark.parametrize(
    ("password", "prepared"),
    [
        ("pencil", "pencil"),
        ("tab\tand\x07bell", "tab\tand\x07bell"),  # pure ASCII is left alone
        ("\ufb01\u00a0pencil\u00ad", "fi pencil"),
        ("a\u200bb", "a b"),  # U+200B is in both C.1.2 and B.1: space wins
        ("\u2163", "IV"),  # roman numeral four
        ("\u00ad\ufeff", None),  # maps to nothing: treated as prohibited
        ("\ufb01\ue000", None),
        ("\u05d0a", None),
        ("a\u05d0b\u05d0", None),
        ("\u05d0\u05d1", "\u05d0\u05d1"),
    ],
)
def test_saslprep(password: str, prepared: str | None) -> None:
    assert _saslprep_or_none(password) == prepared


def test_fresh_verifier_format_and_random_salt() -> None:
    first = scram_sha256_verifier("pencil")
    second = scram_sha256_verifier("pencil")
    assert first != second
    prefix, params, keys = first.split("$")
    iterations, salt = params.split(":")
    assert (prefix, iterations) == ("SCRAM-SHA-256", "4096")
    assert len(base64.b64decode(salt)) == 16
    assert [len(base64.b64decode(key)) for key in keys.split(":")] == [32, 32]
    assert scram_sha256_verifier("pencil", current=first) == first


@pytest.mark.parametrize(
    "current",
    [
        None,
        "",
        "md5a5d6b9f0ba0d5f6c3f1a4ecf0a8b8a83",
        "pencil",
        "SCRAM-SHA-256$4096:bad$bad:bad",
        "SCRAM-SHA-256$0:aawb1IKg7T8uVqpRW5L0uQ==$A40yBLnX8Ag3YZmB/s3KN8+VSuBqMXZ14vbfRWu62es="
        ":7ElpIDX8EIOu205LCjvBYueq3+3xITAesiq6CIeHEtk=",
    ],
)
def test_anything_but_a_matching_scram_verifier_gets_a_fresh_one(current: str | None) -> None:
    salt = "c2FsdHNhbHRzYWx0c2FsdA=="
    expected = scram_sha256_verifier("pencil", salt=salt)
    assert scram_sha256_verifier("pencil", current=current, salt=salt) == expected


def test_other_iteration_count_rebuilds_the_verifier() -> None:
    current = scram_sha256_verifier("pencil", iterations=4096)
    rebuilt = scram_sha256_verifier("pencil", current=current, iterations=10000)
    assert rebuilt.startswith("SCRAM-SHA-256$10000:")
    assert scram_sha256_verifier("pencil", current=rebuilt, iterations=10000) == rebuilt


def test_iterations_given_as_text() -> None:
    salt = "c2FsdHNhbHRzYWx0c2FsdA=="
    assert scram_sha256_verifier("pencil", iterations="4096", salt=salt) == scram_sha256_verifier("pencil", salt=salt)


@pytest.mark.parametrize("password", [None, "", 1234, b"pencil", ["pencil"]])
def test_bad_password_type_or_empty(password: object) -> None:
    with pytest.raises(AnsibleFilterError, match="password"):
        scram_sha256_verifier(password)


def test_errors_never_show_the_password() -> None:
    for password, kwargs in [
        ("s3cr3t\x00tail", {}),
        ("s3cr3t\ud800", {}),
        ("s3cr3t", {"iterations": 0}),
        ("s3cr3t", {"salt": "%%%"}),
        ("s3cr3t", {"current": 42}),
    ]:
        with pytest.raises(AnsibleFilterError) as error:
            scram_sha256_verifier(password, **kwargs)
        assert "s3cr3t" not in str(error.value)
        assert error.value.__cause__ is None


@pytest.mark.parametrize("iterations", [0, -1, 2**31, 1.5, True, "many", None])
def test_bad_iterations(iterations: object) -> None:
    with pytest.raises(AnsibleFilterError, match="iterations"):
        scram_sha256_verifier("pencil", iterations=iterations)


@pytest.mark.parametrize("salt", ["", "not base64!", "abc", 16])
def test_bad_salt(salt: object) -> None:
    with pytest.raises(AnsibleFilterError, match="salt"):
        scram_sha256_verifier("pencil", salt=salt)


def test_current_must_be_text() -> None:
    with pytest.raises(AnsibleFilterError, match="current"):
        scram_sha256_verifier("pencil", current={"rolpassword": "x"})


# ---------------------------------------------------------------------------
# pg_hba_problems
# ---------------------------------------------------------------------------

GOOD_HBA = [
    {"type": "local", "database": "all", "user": "postgres", "method": "peer"},
    {"type": "local", "database": "tgstack", "user": "app", "method": "scram-sha-256"},
    {"type": "host", "database": "tgstack", "user": "app", "address": "10.0.0.0/8", "method": "scram-sha-256"},
    {"type": "host", "database": "tgstack", "user": "app", "address": "10.1.2.3/8", "method": "scram-sha-256"},
    {"type": "hostssl", "database": "tgstack", "user": "app", "address": "fd00::/8", "method": "scram-sha-256"},
    {
        "type": "hostssl",
        "database": "tgstack",
        "user": "replicator",
        "address": "db2.example.com",
        "method": "cert",
        "options": "clientcert=verify-full map=certs",
    },
    {"type": "hostnossl", "database": "all", "user": "all", "address": "all", "method": "reject"},
    {"type": "host", "database": "all", "user": "all", "address": "samehost", "method": "reject"},
    {"type": "host", "database": "all", "user": "all", "address": "samenet", "method": "reject"},
    {"type": "host", "database": "all", "user": "all", "address": ".internal.example", "method": "reject"},
    {"type": "host", "database": "tgstack,metrics", "user": "+readers", "address": "::1/128", "method": "reject"},
    {"type": "host", "database": '"my db"', "user": "app", "address": "127.0.0.1/32", "method": "reject"},
    {"type": "local", "database": "all", "user": "postgres", "method": "trust"},
    {"type": "local", "database": "all", "user": "app", "method": "peer", "options": ""},
]


def test_good_entries_have_no_problems() -> None:
    assert pg_hba_problems(GOOD_HBA) == []
    assert pg_hba_problems([]) == []
    assert pg_hba_problems(None) == []


def test_problem_names_the_entry_and_explains_the_address() -> None:
    bad = {"type": "host", "database": "tgstack", "user": "app", "address": "10.0.0.300/8", "method": "scram-sha-256"}
    entries = [*GOOD_HBA[:2], bad]
    assert pg_hba_problems(entries) == [
        "timescaledb_hba_entries[2] (host tgstack app 10.0.0.300/8 scram-sha-256): address '10.0.0.300/8' does "
        "not parse: use an IPv4/IPv6 address with a CIDR mask such as 10.0.0.0/8, or all, samehost, samenet, "
        "or a host name"
    ]


def _host(**changes: object) -> dict:
    entry = {"type": "host", "database": "tgstack", "user": "app", "address": "10.0.0.0/8", "method": "scram-sha-256"}
    entry.update(changes)
    return {key: value for key, value in entry.items() if value is not None}


def _only_problem(entry: dict, allow_trust: bool = False) -> str:
    problems = pg_hba_problems([entry], allow_trust=allow_trust)
    assert len(problems) == 1, problems
    assert problems[0].startswith("timescaledb_hba_entries[0] (")
    return problems[0].split("): ", 1)[1]


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("999.1.1.1", "address '999.1.1.1' does not parse"),
        ("10.0.0", "address '10.0.0' does not parse"),
        ("10.0.0.0/33", "address '10.0.0.0/33' does not parse"),
        ("10.0.0.0/255.0.0.0", "address '10.0.0.0/255.0.0.0' does not parse"),
        ("fd00::zz/8", "address 'fd00::zz/8' does not parse"),
        ("db.example.com/24", "address 'db.example.com/24' does not parse"),
        ("-db.example.com", "address '-db.example.com' does not parse"),
        ("db..example.com", "address 'db..example.com' does not parse"),
        ("db_1.example.com", "address 'db_1.example.com' does not parse"),
        ("10.0.0.5", "address '10.0.0.5' has no CIDR mask, which pg_hba.conf requires: write 10.0.0.5/32"),
        ("fd00::5", "address 'fd00::5' has no CIDR mask, which pg_hba.conf requires: write fd00::5/128"),
        (None, "address is required"),
        (8, "address must be a string, got int"),
    ],
)
def test_bad_addresses(address: object, expected: str) -> None:
    assert _only_problem(_host(address=address)).startswith(expected)


@pytest.mark.parametrize("address", ["192.168.1.0/24", "2001:db8::/32", "localhost", "db-1.example.com", ".example"])
def test_good_addresses(address: str) -> None:
    assert pg_hba_problems([_host(address=address)]) == []


@pytest.mark.parametrize("address", ["10.0.0.0/8", "", None])
def test_local_entries_take_no_address(address: object) -> None:
    entry = {"type": "local", "database": "all", "user": "app", "address": address, "method": "peer"}
    assert _only_problem(entry) == (
        "address is not allowed for type local (a Unix-domain socket has no address): remove it"
    )


@pytest.mark.parametrize("method", ["md5", "password"])
def test_weak_password_methods_are_refused(method: str) -> None:
    problem = _only_problem(_host(method=method))
    assert problem.startswith(f"method '{method}' is refused: use scram-sha-256")
    assert "downgrade" in problem
    assert "plain text" in problem


def test_unknown_method() -> None:
    assert _only_problem(_host(method="ident")) == (
        "unknown method 'ident': use one of scram-sha-256, reject, cert, peer, trust"
    )
    assert _only_problem(_host(method="SCRAM-SHA-256")).startswith("unknown method 'SCRAM-SHA-256'")


def test_cert_needs_hostssl() -> None:
    assert _only_problem(_host(method="cert")).startswith("method 'cert' needs type hostssl")
    assert pg_hba_problems([_host(type="hostssl", method="cert")]) == []


def test_peer_needs_local() -> None:
    assert _only_problem(_host(method="peer")).startswith("method 'peer' needs type local")


def test_trust_needs_the_switch() -> None:
    message = _only_problem(_host(method="trust"))
    assert "set timescaledb_hba_allow_trust: true to allow it, or use scram-sha-256" in message
    local_app = {"type": "local", "database": "all", "user": "app", "method": "trust"}
    assert "timescaledb_hba_allow_trust" in _only_problem(local_app)
    local_postgres_one_db = {"type": "local", "database": "tgstack", "user": "postgres", "method": "trust"}
    assert "timescaledb_hba_allow_trust" in _only_problem(local_postgres_one_db)
    assert pg_hba_problems([_host(method="trust"), local_app], allow_trust=True) == []


@pytest.mark.parametrize(("allow_trust", "allowed"), [("false", False), ("no", False), ("true", True), (1, True)])
def test_allow_trust_is_read_like_ansible_booleans(allow_trust: object, allowed: bool) -> None:
    assert (pg_hba_problems([_host(method="trust")], allow_trust=allow_trust) == []) is allowed


@pytest.mark.parametrize("allow_trust", ["perhaps", None, [True]])
def test_allow_trust_must_be_a_boolean(allow_trust: object) -> None:
    with pytest.raises(AnsibleFilterError, match="allow_trust must be a boolean"):
        pg_hba_problems([_host()], allow_trust=allow_trust)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"type": None}, "type is required"),
        ({"type": "hostgssenc"}, "type 'hostgssenc' is not supported: use one of local, host, hostssl, hostnossl"),
        ({"type": ["host"]}, "type must be a string, got list"),
        ({"database": None}, "database is required"),
        ({"database": ""}, "database is required"),
        ({"database": ["a", "b"]}, "database must be a string, got list"),
        ({"user": None}, "user is required"),
        ({"user": 5}, "user must be a string, got int"),
        ({"method": None}, "method is required"),
        ({"database": "all all"}, "database 'all all' contains blanks outside double quotes"),
        ({"user": "app#x"}, "user 'app#x' contains '#' outside double quotes"),
        ({"user": '"app'}, "user '\"app' has an unbalanced double quote"),
        ({"options": 3}, "options must be a string, got int"),
        ({"options": "clientcert"}, "options 'clientcert' must be blank-separated name=value pairs"),
        ({"options": "map=x\nhost all all 0.0.0.0/0 trust"}, "options contains a control character"),
        ({"comment": "hi", "Method": "x"}, "unknown key(s) Method, comment: allowed keys are type, database, user"),
    ],
)
def test_field_rules(changes: dict, expected: str) -> None:
    assert _only_problem(_host(**changes)).startswith(expected)


def test_null_options_are_refused() -> None:
    # The pg_hba template writes every defined key, so null would become "None".
    assert _only_problem({**_host(), "options": None}) == "options must be a string, got NoneType"


def test_newline_cannot_smuggle_a_rule() -> None:
    entry = _host(user="app\nhost all all 0.0.0.0/0 trust")
    assert "user" in _only_problem(entry)
    assert "control character" in _only_problem(entry)


def test_several_problems_in_one_entry_and_bad_items() -> None:
    problems = pg_hba_problems([{"type": "host", "method": "md5", "extra": 1}, "host all all trust"])
    assert problems == [
        "timescaledb_hba_entries[0] (host md5): unknown key(s) extra: allowed keys are type, database, user, "
        "address, method, options",
        "timescaledb_hba_entries[0] (host md5): database is required",
        "timescaledb_hba_entries[0] (host md5): user is required",
        "timescaledb_hba_entries[0] (host md5): address is required",
        "timescaledb_hba_entries[0] (host md5): method 'md5' is refused: use scram-sha-256 (md5 lets clients "
        "downgrade to a weak hash, password sends the password in plain text)",
        "timescaledb_hba_entries[1] ('host all all trust'): must be a mapping with keys type, database, user, "
        "address, method, options",
    ]


def test_bad_type_does_not_also_demand_an_address() -> None:
    assert _only_problem(_host(type="hostx", address=None)).startswith("type 'hostx'")


@pytest.mark.parametrize("entries", ["local all all peer", {"type": "local"}, 3])
def test_entries_must_be_a_list(entries: object) -> None:
    with pytest.raises(AnsibleFilterError, match="expected a list"):
        pg_hba_problems(entries)


# ---------------------------------------------------------------------------
# pg_memory_problems
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("shared_buffers", "2GB"),
        ("shared_buffers", "512MB"),
        ("effective_cache_size", "6 GB"),
        ("work_mem", " 64kB "),
        ("work_mem", 4096),
        ("work_mem", "4096"),
        ("maintenance_work_mem", "1TB"),
        ("temp_buffers", "8192B"),
        ("max_wal_size", "0"),
        ("autovacuum_work_mem", -1),
        ("autovacuum_work_mem", "-1"),
        ("wal_buffers", -1),
        ("Shared_Buffers", "1GB"),
    ],
)
def test_memory_values_postgresql_accepts(key: str, value: object) -> None:
    assert pg_memory_problems({key: value}, "timescaledb_settings") == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("shared_buffers", "2gb"),
        ("shared_buffers", "2G"),
        ("shared_buffers", "2 Gb"),
        ("work_mem", "1.5MB"),
        ("work_mem", "lots"),
        ("work_mem", "MB"),
        ("work_mem", -1),
        ("work_mem", "-1"),
        ("wal_buffers", -2),
        ("wal_buffers", "-1MB"),
        ("max_wal_size", 1.5),
        ("max_wal_size", True),
        ("max_wal_size", None),
        ("WAL_KEEP_SIZE", "1 GiB"),
        ("logical_decoding_work_mem", "64 kb"),
        ("work_mem", "4\u00a0MB"),
        ("work_mem", "4MB\n"),
    ],
)
def test_memory_values_postgresql_rejects(key: str, value: object) -> None:
    assert pg_memory_problems({key: value}, "p") == [
        f"p.{key}: '{value}' is not a memory size PostgreSQL understands: write an integer with a unit such "
        "as 512MB or 4GB (units: B, kB, MB, GB, TB; case matters)"
    ]


def test_memory_problems_skip_other_settings_and_keep_order() -> None:
    settings = {
        "max_connections": "many",
        "random_page_cost": "fast",
        "shared_buffers": "2gb",
        "work_mem": "8MB",
        "maintenance_work_mem": "1 gig",
    }
    problems = pg_memory_problems(settings, "timescaledb_postgresql_settings")
    assert [problem.split(":", 1)[0] for problem in problems] == [
        "timescaledb_postgresql_settings.shared_buffers",
        "timescaledb_postgresql_settings.maintenance_work_mem",
    ]
    assert pg_memory_problems({}, "x") == []
    assert pg_memory_problems(None, "x") == []


def test_memory_settings_must_be_a_mapping() -> None:
    with pytest.raises(AnsibleFilterError, match="expected a mapping"):
        pg_memory_problems(["shared_buffers=1GB"], "x")


# ---------------------------------------------------------------------------
# timescaledb_tune
# ---------------------------------------------------------------------------


def test_tune_8gb_4_cpus() -> None:
    assert timescaledb_tune(8192, 4) == {
        "checkpoint_completion_target": "0.9",
        "default_statistics_target": 100,
        "effective_cache_size": "6144MB",
        "effective_io_concurrency": 256,
        "maintenance_work_mem": "1024MB",
        "max_locks_per_transaction": 256,
        "max_parallel_workers": 4,
        "max_parallel_workers_per_gather": 2,
        "max_wal_size": "1024MB",
        "max_worker_processes": 23,
        "min_wal_size": "512MB",
        "random_page_cost": "1.1",
        "shared_buffers": "2048MB",
        "timescaledb.max_background_workers": 16,
        "wal_buffers": "16MB",
        # (8192 - 2048) MB / (100 * 3) / 2 = 10485 kB
        "work_mem": "10MB",
    }


def test_tune_keys_are_sorted() -> None:
    result = timescaledb_tune(8192, 4)
    assert list(result) == sorted(result)


def test_tune_overrides_win_and_may_add_settings() -> None:
    result = timescaledb_tune(8192, 4, overrides={"shared_buffers": "1GB", "random_page_cost": 4, "jit": "off"})
    assert result["shared_buffers"] == "1GB"
    assert result["random_page_cost"] == 4
    assert result["jit"] == "off"
    assert result["effective_cache_size"] == "6144MB"
    assert list(result) == sorted(result)


def test_tune_max_connections_drives_work_mem() -> None:
    result = timescaledb_tune(16384, 8, max_connections=200)
    # (16384 - 4096) MB / 600 / 4 = 5242 kB
    assert result["work_mem"] == "5MB"
    assert "max_connections" not in result  # the role writes it from timescaledb_max_connections
    assert result["max_locks_per_transaction"] == 512
    assert result["max_worker_processes"] == 27


@pytest.mark.parametrize(("cpus", "per_gather"), [(1, 1), (2, 1), (3, 2), (5, 3), (16, 8)])
def test_tune_workers_per_gather_rounds_half_up(cpus: int, per_gather: int) -> None:
    result = timescaledb_tune(8192, cpus)
    assert result["max_parallel_workers_per_gather"] == per_gather
    assert result["max_parallel_workers"] == cpus
    assert result["max_worker_processes"] == 3 + 16 + cpus


def test_tune_caps_and_floors() -> None:
    big = timescaledb_tune(65536, 32)
    assert big["maintenance_work_mem"] == "2048MB"
    assert big["max_locks_per_transaction"] == 1024
    small = timescaledb_tune(1024, 2, max_connections=5000)
    assert small["work_mem"] == "64kB"
    assert small["max_locks_per_transaction"] == 128
    tiny = timescaledb_tune(2, 1)
    assert tiny["shared_buffers"] == "512kB"
    assert tiny["maintenance_work_mem"] == "256kB"


def test_tune_accepts_digit_strings() -> None:
    assert timescaledb_tune("8192", "4", "100") == timescaledb_tune(8192, 4, 100)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((0, 4), "memory_mb"),
        ((-8192, 4), "memory_mb"),
        (("8GB", 4), "memory_mb"),
        ((8192.0, 4), "memory_mb"),
        ((None, 4), "memory_mb"),
        ((True, 4), "memory_mb"),
        ((8192, 0), "cpus"),
        ((8192, 4, 0), "max_connections"),
    ],
)
def test_tune_rejects_bad_inputs(args: tuple, name: str) -> None:
    with pytest.raises(AnsibleFilterError, match=name):
        timescaledb_tune(*args)


def test_tune_overrides_must_be_a_mapping() -> None:
    with pytest.raises(AnsibleFilterError, match="overrides"):
        timescaledb_tune(8192, 4, overrides=["shared_buffers=1GB"])


def test_filter_module_exposes_all_filters() -> None:
    assert FilterModule().filters() == {
        "pg_hba_problems": pg_hba_problems,
        "pg_memory_problems": pg_memory_problems,
        "scram_sha256_verifier": scram_sha256_verifier,
        "timescaledb_tune": timescaledb_tune,
    }
