# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters used by the timescaledb role.

The documentation of each filter lives in the sidecar files
``plugins/filter/<filter name>.yml``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import secrets
import stringprep
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

# ---------------------------------------------------------------------------
# SCRAM-SHA-256 verifiers
# ---------------------------------------------------------------------------

SCRAM_PREFIX = "SCRAM-SHA-256"
SCRAM_DEFAULT_ITERATIONS = 4096
# PostgreSQL generates 16-byte salts (SCRAM_DEFAULT_SALT_LEN).
SCRAM_SALT_LEN = 16
# scram_iterations is an int GUC in PostgreSQL, so INT_MAX is its ceiling.
SCRAM_MAX_ITERATIONS = 2**31 - 1
_SHA256_LEN = 32


def _saslprep_or_none(password: str) -> str | None:
    """Return ``password`` prepared with SASLprep, or None when it fails.

    This follows PostgreSQL's ``pg_saslprep()`` (src/common/saslprep.c)
    step by step rather than RFC 4013 to the letter, because the verifier
    must match what the server computes:

    * pure ASCII is returned untouched, even ASCII control characters;
    * the prohibited-output and bidi checks look at the mapped string
      *before* NFKC normalisation (that is what the C code does);
    * a string that maps to nothing counts as prohibited.

    The stringprep tables are those of Unicode 3.2 (RFC 3454); the NFKC
    step uses the current Unicode tables, like PostgreSQL does.
    """
    if password.isascii():
        return password
    mapped = []
    for char in password:
        # C.1.2 is tested first: U+200B is in both tables and PostgreSQL
        # maps it to a space.
        if stringprep.in_table_c12(char):
            mapped.append(" ")
        elif not stringprep.in_table_b1(char):
            mapped.append(char)
    if not mapped:
        return None
    if any(_saslprep_prohibited(char) for char in mapped):
        return None
    if not _saslprep_bidi_ok(mapped):
        return None
    return unicodedata.normalize("NFKC", "".join(mapped))


def _saslprep_prohibited(char: str) -> bool:
    """Tell whether SASLprep forbids ``char`` in its output (tables C.* and A.1)."""
    return (
        stringprep.in_table_c12(char)
        or stringprep.in_table_c21_c22(char)
        or stringprep.in_table_c3(char)
        or stringprep.in_table_c4(char)
        or stringprep.in_table_c5(char)
        or stringprep.in_table_c6(char)
        or stringprep.in_table_c7(char)
        or stringprep.in_table_c8(char)
        or stringprep.in_table_c9(char)
        or stringprep.in_table_a1(char)
    )


def _saslprep_bidi_ok(chars: list[str]) -> bool:
    """Apply the RFC 3454 section 6 rules for right-to-left characters."""
    if not any(stringprep.in_table_d1(char) for char in chars):
        return True
    if any(stringprep.in_table_d2(char) for char in chars):
        return False
    return stringprep.in_table_d1(chars[0]) and stringprep.in_table_d1(chars[-1])


def _password_bytes(password: str) -> bytes:
    """Return the bytes PostgreSQL feeds to PBKDF2 for ``password``.

    PostgreSQL works on the bytes it receives: when they are not valid
    UTF-8, or SASLprep fails, it hashes them unchanged, so we do the same.
    Invalid UTF-8 can only reach us as surrogate escapes (text decoded with
    ``errors="surrogateescape"``), hence the round trip through bytes.
    """
    try:
        raw = password.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # "from None": the original exception quotes a password character.
        raise AnsibleFilterError(
            "scram_sha256_verifier: the password contains lone surrogate code points and cannot be encoded"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    prepared = _saslprep_or_none(text)
    return raw if prepared is None else prepared.encode("utf-8")


def _scram_keys(password: bytes, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """Return (StoredKey, ServerKey) as defined by RFC 5802 section 3."""
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return stored_key, server_key


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Decode strict base64 (padding required, as pg_b64_decode wants); None if invalid."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


class ScramSecret(NamedTuple):
    """The parts of a SCRAM-SHA-256 verifier, decoded."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    def as_text(self) -> str:
        """Render the verifier the way pg_authid.rolpassword stores it."""
        return f"{SCRAM_PREFIX}${self.iterations}:{_b64(self.salt)}${_b64(self.stored_key)}:{_b64(self.server_key)}"


def _build_secret(password: bytes, salt: bytes, iterations: int) -> ScramSecret:
    return ScramSecret(iterations, salt, *_scram_keys(password, salt, iterations))


def _parse_verifier(secret: str) -> ScramSecret | None:
    """Split a SCRAM-SHA-256 secret like PostgreSQL's parse_scram_secret().

    Returns None when ``secret`` is anything else (md5 hash, plain text,
    garbage).
    """
    match = re.fullmatch(
        r"SCRAM-SHA-256\$(?P<iter>[0-9]+):(?P<salt>[^$:]+)\$(?P<stored>[^$:]+):(?P<server>[^$:]+)",
        secret,
    )
    if match is None:
        return None
    iterations = int(match["iter"])
    salt = _b64decode(match["salt"])
    stored_key = _b64decode(match["stored"])
    server_key = _b64decode(match["server"])
    if not 1 <= iterations <= SCRAM_MAX_ITERATIONS or not salt:
        return None
    if stored_key is None or server_key is None:
        return None
    if len(stored_key) != _SHA256_LEN or len(server_key) != _SHA256_LEN:
        return None
    return ScramSecret(iterations, salt, stored_key, server_key)


def _digits_to_int(value: Any) -> Any:
    """Turn a string of ASCII digits into an int and leave anything else alone.

    Extra vars (-e) and some templated values reach filters as text.
    """
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        return int(value)
    return value


def _check_iterations(iterations: Any) -> int:
    iterations = _digits_to_int(iterations)
    if isinstance(iterations, bool) or not isinstance(iterations, int):
        raise AnsibleFilterError(
            f"scram_sha256_verifier: iterations must be an integer, got {type(iterations).__name__}"
        )
    if not 1 <= iterations <= SCRAM_MAX_ITERATIONS:
        raise AnsibleFilterError(
            f"scram_sha256_verifier: iterations must be between 1 and {SCRAM_MAX_ITERATIONS}, got {iterations}"
        )
    return iterations


def _check_salt(salt: Any) -> bytes | None:
    if salt is None:
        return None
    decoded = _b64decode(salt) if isinstance(salt, str) else None
    if not decoded:
        raise AnsibleFilterError("scram_sha256_verifier: salt must be a non-empty base64 string")
    return decoded


def _check_password(password: Any) -> str:
    if not isinstance(password, str):
        raise AnsibleFilterError(f"scram_sha256_verifier: the password must be a string, got {type(password).__name__}")
    if not password:
        raise AnsibleFilterError("scram_sha256_verifier: the password is empty")
    # PostgreSQL passwords are C strings: a NUL would silently cut the password short.
    if "\x00" in password:
        raise AnsibleFilterError("scram_sha256_verifier: the password contains a NUL character")
    return password


def scram_sha256_verifier(
    password: str,
    current: str | None = None,
    iterations: int = SCRAM_DEFAULT_ITERATIONS,
    salt: str | None = None,
) -> str:
    """Return a PostgreSQL SCRAM-SHA-256 verifier for ``password``.

    ``current`` is the verifier stored today (pg_authid.rolpassword).  When it
    is a SCRAM-SHA-256 verifier with the requested iteration count that the
    password matches, it is returned unchanged so that the role task reports
    no change.
    """
    password = _check_password(password)
    iterations = _check_iterations(iterations)
    salt_bytes = _check_salt(salt)
    if current is not None and not isinstance(current, str):
        raise AnsibleFilterError(
            f"scram_sha256_verifier: current must be a string or null, got {type(current).__name__}"
        )
    secret = _password_bytes(password)

    parsed = _parse_verifier(current) if current else None
    # An iteration count that differs from the requested one means the
    # desired state changed, so the verifier is rebuilt even if it matches.
    if parsed is not None and parsed.iterations == iterations:
        candidate = _build_secret(secret, parsed.salt, iterations)
        if hmac.compare_digest(candidate.stored_key, parsed.stored_key) and hmac.compare_digest(
            candidate.server_key, parsed.server_key
        ):
            return current

    if salt_bytes is None:
        salt_bytes = secrets.token_bytes(SCRAM_SALT_LEN)
    return _build_secret(secret, salt_bytes, iterations).as_text()


# ---------------------------------------------------------------------------
# pg_hba entries
# ---------------------------------------------------------------------------

HBA_VARIABLE = "timescaledb_hba_entries"
HBA_ALLOW_TRUST_VARIABLE = "timescaledb_hba_allow_trust"
HBA_TYPES = ("local", "host", "hostssl", "hostnossl")
HBA_KEYS = ("type", "database", "user", "address", "method", "options")
HBA_METHODS = ("scram-sha-256", "reject", "cert", "peer", "trust")
HBA_ADDRESS_KEYWORDS = ("all", "samehost", "samenet")
_HBA_ADDRESS_HINT = (
    "use an IPv4/IPv6 address with a CIDR mask such as 10.0.0.0/8, or all, samehost, samenet, or a host name"
)
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# Double-quoted parts of a pg_hba field may hold blanks and '#'.
_HBA_QUOTED = re.compile(r'"(?:[^"]|"")*"')
# An authentication option is name=value; a value may be double-quoted.
_HBA_OPTION = re.compile(r'[A-Za-z_][A-Za-z0-9_]*=(?:"(?:[^"]|"")*"|[^\s"]+)')


def _hba_label(index: int, entry: Any) -> str:
    """Name an entry for messages: its index and its fields in pg_hba order."""
    if isinstance(entry, Mapping):
        fields = [str(entry[key]) for key in HBA_KEYS if entry.get(key) not in (None, "")]
        content = " ".join(fields) if fields else "empty"
    else:
        content = repr(entry)
    return f"{HBA_VARIABLE}[{index}] ({content})"


def _hba_field_syntax(value: str) -> str | None:
    """Describe why ``value`` cannot be written as one pg_hba.conf field, if so.

    Unquoted blanks would shift the following columns and a newline would
    start a new rule, which could smuggle in an unchecked line.
    """
    if any(unicodedata.category(char) == "Cc" and char != "\t" for char in value):
        return "contains a control character such as a newline"
    unquoted = _HBA_QUOTED.sub("", value)
    if '"' in unquoted:
        return "has an unbalanced double quote"
    if any(char.isspace() for char in unquoted):
        return "contains blanks outside double quotes (pg_hba.conf fields are separated by blanks)"
    if "#" in unquoted:
        return "contains '#' outside double quotes (it would start a comment)"
    return None


def _hba_text_problem(entry: Mapping, key: str) -> str | None:
    value = entry.get(key)
    if value is None or value == "":
        return f"{key} is required"
    if not isinstance(value, str):
        return f"{key} must be a string, got {type(value).__name__}"
    reason = _hba_field_syntax(value)
    return f"{key} '{value}' {reason}" if reason else None


def _hba_type_problem(entry: Mapping) -> str | None:
    problem = _hba_text_problem(entry, "type")
    if problem is None and entry["type"] not in HBA_TYPES:
        problem = f"type '{entry['type']}' is not supported: use one of {', '.join(HBA_TYPES)}"
    return problem


def _looks_numeric(address: str) -> bool:
    """Tell whether ``address`` is meant as an IP address rather than a host name."""
    return ":" in address or "/" in address or all(char.isdigit() or char == "." for char in address)


def _is_host_name(address: str) -> bool:
    """Check DNS syntax; a leading dot is pg_hba's "any host in this domain"."""
    name = address[1:] if address.startswith(".") else address
    if not name or len(name) > 253:
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


def _address_problem(address: str) -> str | None:
    if address in HBA_ADDRESS_KEYWORDS:
        return None
    if "/" in address:
        mask = address.partition("/")[2]
        try:
            # pg_hba wants a prefix length after '/', never a dotted netmask,
            # which ip_network() would also take.
            if mask.isdigit():
                ipaddress.ip_network(address, strict=False)
                return None
        except ValueError:
            pass
    else:
        try:
            bare = ipaddress.ip_address(address)
        except ValueError:
            pass
        else:
            suffix = 32 if bare.version == 4 else 128
            return (
                f"address '{address}' has no CIDR mask, which pg_hba.conf requires: "
                f"write {address}/{suffix} for a single host"
            )
    if not _looks_numeric(address) and _is_host_name(address):
        return None
    return f"address '{address}' does not parse: {_HBA_ADDRESS_HINT}"


def _hba_address_problem(entry: Mapping) -> str | None:
    address = entry.get("address")
    if entry.get("type") == "local":
        # Any address key counts, even null: the pg_hba template writes
        # whatever is defined, and "None" would become the method column.
        if "address" not in entry:
            return None
        return "address is not allowed for type local (a Unix-domain socket has no address): remove it"
    absent = address is None or address == ""
    # With a missing or bad type, "address is required" would only be noise.
    if absent and entry.get("type") not in HBA_TYPES:
        return None
    problem = _hba_text_problem(entry, "address")
    return problem if problem is not None else _address_problem(entry["address"])


def _is_postgres_socket_entry(entry: Mapping) -> bool:
    # The role always writes "local all postgres peer" for its own
    # administration; trusting that same socket login adds no exposure.
    return entry.get("type") == "local" and entry.get("database") == "all" and entry.get("user") == "postgres"


def _hba_method_problem(entry: Mapping, allow_trust: bool) -> str | None:
    problem = _hba_text_problem(entry, "method")
    if problem is not None:
        return problem
    method = entry["method"]
    entry_type = entry.get("type")
    if method in ("md5", "password"):
        return (
            f"method '{method}' is refused: use scram-sha-256 "
            "(md5 lets clients downgrade to a weak hash, password sends the password in plain text)"
        )
    if method not in HBA_METHODS:
        return f"unknown method '{method}': use one of {', '.join(HBA_METHODS)}"
    if method == "cert" and entry_type != "hostssl":
        return "method 'cert' needs type hostssl (client certificates only exist on SSL connections)"
    if method == "peer" and entry_type != "local":
        return "method 'peer' needs type local (peer authentication only works on the Unix-domain socket)"
    if method == "trust" and not allow_trust and not _is_postgres_socket_entry(entry):
        return (
            f"method 'trust' lets anyone matching this line in without a password: "
            f"set {HBA_ALLOW_TRUST_VARIABLE}: true to allow it, or use scram-sha-256"
        )
    return None


def _hba_options_problem(entry: Mapping) -> str | None:
    if "options" not in entry:
        return None
    options = entry["options"]
    # null is refused like other non-strings: the template would write "None".
    if not isinstance(options, str):
        return f"options must be a string, got {type(options).__name__}"
    if any(unicodedata.category(char) == "Cc" and char != "\t" for char in options):
        return "options contains a control character such as a newline"
    leftover = _HBA_OPTION.sub(" ", options).strip()
    if leftover:
        return f"options '{options}' must be blank-separated name=value pairs such as clientcert=verify-full"
    return None


def _hba_entry_problems(entry: Mapping, allow_trust: bool) -> list[str]:
    problems = []
    unknown = sorted(str(key) for key in entry if key not in HBA_KEYS)
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)}: allowed keys are {', '.join(HBA_KEYS)}")
    checks = (
        _hba_type_problem(entry),
        _hba_text_problem(entry, "database"),
        _hba_text_problem(entry, "user"),
        _hba_address_problem(entry),
        _hba_method_problem(entry, allow_trust),
        _hba_options_problem(entry),
    )
    problems.extend(problem for problem in checks if problem is not None)
    return problems


def _as_bool(value: Any, name: str) -> bool:
    """Read a boolean the way Ansible does.

    bool("false") would be True, and for allow_trust that mistake opens
    the server, so text is parsed and anything unclear is an error.
    """
    try:
        return boolean(value, strict=True)
    except TypeError:
        raise AnsibleFilterError(f"pg_hba_problems: {name} must be a boolean, got {value!r}") from None


def pg_hba_problems(entries: list[dict], allow_trust: bool = False) -> list[str]:
    """Return human-readable problems of the role's pg_hba entries (empty when fine)."""
    if entries is None:
        return []
    if not isinstance(entries, (list, tuple)):
        raise AnsibleFilterError(f"pg_hba_problems: expected a list of entries, got {type(entries).__name__}")
    allow_trust = _as_bool(allow_trust, "allow_trust")
    problems = []
    for index, entry in enumerate(entries):
        label = _hba_label(index, entry)
        if not isinstance(entry, Mapping):
            problems.append(f"{label}: must be a mapping with keys {', '.join(HBA_KEYS)}")
            continue
        problems.extend(f"{label}: {problem}" for problem in _hba_entry_problems(entry, allow_trust))
    return problems


# ---------------------------------------------------------------------------
# Memory settings
# ---------------------------------------------------------------------------

# Settings whose GUC unit is bytes, kB, 8kB blocks or MB, i.e. those that
# accept memory units in postgresql.conf (PostgreSQL 17).
PG_MEMORY_SETTINGS = frozenset(
    {
        "autovacuum_work_mem",
        "backend_flush_after",
        "bgwriter_flush_after",
        "checkpoint_flush_after",
        "effective_cache_size",
        "gin_pending_list_limit",
        "huge_page_size",
        "logical_decoding_work_mem",
        "maintenance_work_mem",
        "max_slot_wal_keep_size",
        "max_stack_depth",
        "max_wal_size",
        "min_dynamic_shared_memory",
        "min_parallel_index_scan_size",
        "min_parallel_table_scan_size",
        "min_wal_size",
        "shared_buffers",
        "temp_buffers",
        "temp_file_limit",
        "vacuum_buffer_usage_limit",
        "wal_buffers",
        "wal_keep_size",
        "wal_skip_threshold",
        "wal_writer_flush_after",
        "work_mem",
    }
)
# Settings where -1 has a meaning (use another setting, or no limit).
PG_MEMORY_MINUS_ONE = frozenset({"autovacuum_work_mem", "max_slot_wal_keep_size", "temp_file_limit", "wal_buffers"})
PG_MEMORY_UNITS = ("B", "kB", "MB", "GB", "TB")
# PostgreSQL's parse_int() skips blanks around the number and the unit. Only
# spaces and tabs are accepted here: a line break inside a quoted value would
# break postgresql.conf itself.
_BLANKS = r"[ \t]*"
_MEMORY_VALUE = re.compile(rf"{_BLANKS}(?P<number>-?[0-9]+){_BLANKS}(?P<unit>{'|'.join(PG_MEMORY_UNITS)})?{_BLANKS}")


def _memory_value_ok(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        number, unit = value, None
    elif isinstance(value, str):
        match = _MEMORY_VALUE.fullmatch(value)
        if match is None:
            return False
        number, unit = int(match["number"]), match["unit"]
    else:
        return False
    if number >= 0:
        return True
    return number == -1 and unit is None and key in PG_MEMORY_MINUS_ONE


def pg_memory_problems(settings: dict, prefix: str) -> list[str]:
    """Return problems for memory settings in ``settings`` PostgreSQL would reject."""
    if settings is None:
        return []
    if not isinstance(settings, Mapping):
        raise AnsibleFilterError(f"pg_memory_problems: expected a mapping of settings, got {type(settings).__name__}")
    problems = []
    for key, value in settings.items():
        # GUC names are case-insensitive in PostgreSQL.
        name = str(key).strip().lower()
        if name in PG_MEMORY_SETTINGS and not _memory_value_ok(name, value):
            problems.append(
                f"{prefix}.{key}: '{value}' is not a memory size PostgreSQL understands: "
                "write an integer with a unit such as 512MB or 4GB (units: B, kB, MB, GB, TB; case matters)"
            )
    return problems


# ---------------------------------------------------------------------------
# Tuning
# ---------------------------------------------------------------------------

# timescaledb-tune's MaxBackgroundWorkersDefault.
TIMESCALEDB_BACKGROUND_WORKERS = 16
# Checkpointer, WAL writer, autovacuum launcher (timescaledb-tune's minBuiltInProcesses).
BUILTIN_WORKER_PROCESSES = 3
MAINTENANCE_WORK_MEM_CAP_KB = 2 * 1024 * 1024
WORK_MEM_FLOOR_KB = 64
# timescaledb-tune's constants that do not depend on the machine.
TUNE_CONSTANTS: dict[str, str | int] = {
    "checkpoint_completion_target": "0.9",
    "default_statistics_target": 100,
    "effective_io_concurrency": 256,
    "max_wal_size": "1024MB",
    "min_wal_size": "512MB",
    "random_page_cost": "1.1",
    "wal_buffers": "16MB",
}


def _positive_int(value: Any, name: str) -> int:
    """Return ``value`` as a positive int; digit strings are accepted."""
    value = _digits_to_int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AnsibleFilterError(f"timescaledb_tune: {name} must be a positive integer, got {value!r}")
    return value


def _memory_text(kilobytes: int) -> str:
    """Render a size like PostgreSQL settings: whole MB from 1MB up, else kB."""
    if kilobytes >= 1024:
        return f"{kilobytes // 1024}MB"
    return f"{kilobytes}kB"


def _max_locks_per_transaction(memory_mb: int) -> int:
    # timescaledb-tune: 128 below 8GB, doubling at 8, 16 and 32GB; chunks
    # of hypertables each take locks, hence more than PostgreSQL's 64.
    for threshold_gb, locks in ((32, 1024), (16, 512), (8, 256)):
        if memory_mb >= threshold_gb * 1024:
            return locks
    return 128


def timescaledb_tune(
    memory_mb: int,
    cpus: int,
    max_connections: int = 100,
    overrides: dict | None = None,
) -> dict[str, str | int]:
    """Compute postgresql.conf settings in the spirit of timescaledb-tune."""
    memory_mb = _positive_int(memory_mb, "memory_mb")
    cpus = _positive_int(cpus, "cpus")
    max_connections = _positive_int(max_connections, "max_connections")
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, Mapping):
        raise AnsibleFilterError(f"timescaledb_tune: overrides must be a mapping, got {type(overrides).__name__}")

    memory_kb = memory_mb * 1024
    shared_buffers_kb = memory_kb // 4
    # timescaledb-tune rounds cpus / 2 half up (Go's math.Round).
    workers_per_gather = max(1, (cpus + 1) // 2)
    work_mem_kb = (memory_kb - shared_buffers_kb) // (max_connections * 3) // workers_per_gather

    settings: dict[str, str | int] = dict(TUNE_CONSTANTS)
    settings.update(
        {
            "effective_cache_size": _memory_text(memory_kb * 3 // 4),
            "maintenance_work_mem": _memory_text(min(memory_kb // 8, MAINTENANCE_WORK_MEM_CAP_KB)),
            "max_locks_per_transaction": _max_locks_per_transaction(memory_mb),
            "max_parallel_workers": cpus,
            "max_parallel_workers_per_gather": workers_per_gather,
            "max_worker_processes": BUILTIN_WORKER_PROCESSES + TIMESCALEDB_BACKGROUND_WORKERS + cpus,
            "shared_buffers": _memory_text(shared_buffers_kb),
            "timescaledb.max_background_workers": TIMESCALEDB_BACKGROUND_WORKERS,
            "work_mem": _memory_text(max(WORK_MEM_FLOOR_KB, work_mem_kb)),
        }
    )
    settings.update({str(key): value for key, value in overrides.items()})
    return dict(sorted(settings.items()))


class FilterModule:
    """PostgreSQL and TimescaleDB helpers for the timescaledb role."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "pg_hba_problems": pg_hba_problems,
            "pg_memory_problems": pg_memory_problems,
            "scram_sha256_verifier": scram_sha256_verifier,
            "timescaledb_tune": timescaledb_tune,
        }
