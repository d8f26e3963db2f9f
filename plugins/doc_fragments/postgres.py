# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by the tgstack.hybrid database modules
    # (plugins/module_utils/postgres.py: postgres_common_argument_spec).
    DOCUMENTATION = r"""
options:
  login_user:
    description:
      - The role to connect as. Falls back to E(PGUSER) when left at the default.
    type: str
    default: postgres
    aliases: [login]
  login_password:
    description:
      - The password. Falls back to E(PGPASSWORD). Not needed over the local socket with peer authentication.
    type: str
    default: ''
  login_host:
    description:
      - Host name or address of the server. Falls back to E(PGHOST); empty means the local Unix socket.
    type: str
    default: ''
  login_port:
    description:
      - Port of the server (also the Unix socket's suffix). Falls back to E(PGPORT) when left at the default.
    type: int
    default: 5432
  login_unix_socket:
    description:
      - Directory of the Unix socket; takes precedence over O(login_host).
    type: str
    default: ''
  login_db:
    description:
      - Database to connect to. Falls back to E(PGDATABASE), then to V(postgres).
    type: str
    default: ''
  connect_timeout:
    description:
      - Seconds to wait for the connection.
    type: int
    default: 10
  ssl_mode:
    description:
      - libpq's sslmode for TCP connections.
    type: str
    default: prefer
    choices: [allow, disable, prefer, require, verify-ca, verify-full]
requirements:
  - psycopg2 on the managed host (Debian package python3-psycopg2, installed by the tgstack.hybrid.timescaledb role).
notes:
  - Modules connect with psycopg2 directly rather than through community.postgresql's helper so that they can hold
    advisory locks and run statements outside a transaction, which that helper does not expose.
"""
