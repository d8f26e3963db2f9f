"""Protocol-level prepared statements through PgBouncer in transaction mode (run inside the lab host).

Four client connections prepare the same named statements (psycopg 3, prepare_threshold=0: every
statement goes through Parse/Bind/Execute with a name) and run them in separate transactions, while
one client holds a server connection in an open transaction, so statements land on server
connections that have not seen them yet. Between two passes PgBouncer is told to RECONNECT (close
its server connections once free): the clients keep using the statements they prepared before, and
PgBouncer must prepare them again on the new server connections. Prints a JSON summary. Password from
PGPASSWORD; the admin console is reached as the local pgbouncer user (run as root in the lab host).
"""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg


def reconnect_servers(port: str) -> None:
    subprocess.run(
        [
            *("runuser", "-u", "postgres", "--", "psql", "-X", "-h", "/var/run/postgresql", "-p", port),
            *("-U", "pgbouncer", "-d", "pgbouncer", "-c", "RECONNECT"),
        ],
        check=True,
        capture_output=True,
        cwd="/",
    )


def main(dsn: str, rounds: int, port: str) -> dict:
    clients = [psycopg.connect(dsn, autocommit=True, prepare_threshold=0) for _client in range(4)]
    wrong = 0
    executed = 0
    try:
        for round_number in range(2 * rounds):
            if round_number == rounds:
                reconnect_servers(port)
            holder = clients[round_number % len(clients)]
            with holder.transaction():
                holder.execute("SELECT %s::int * 3", (round_number,)).fetchone()
                for client in clients:
                    if client is holder:
                        continue
                    value = client.execute("SELECT %s::int + 1", (round_number,)).fetchone()[0]
                    text = client.execute("SELECT upper(%s::text)", (f"r{round_number}",)).fetchone()[0]
                    executed += 2
                    wrong += (value != round_number + 1) + (text != f"R{round_number}")
    finally:
        for client in clients:
            client.close()
    return {"executed": executed, "wrong": wrong}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), sys.argv[3])))
