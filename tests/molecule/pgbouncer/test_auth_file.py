"""auth_file mode: the SCRAM secrets PgBouncer holds are pg_authid's own, byte for byte.

The test switches the scenario's host to auth_file mode and converges it back afterwards.
"""

from __future__ import annotations

import os

import testinfra
import testinfra.utils.ansible_runner
from bouncer import AUTH_FILE, Bouncer, run_role

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("pgbouncer")


def test_auth_file_mode_copies_scram_secrets_from_pg_authid():
    name = HOSTS[0]
    bouncer = Bouncer(testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}"))
    app = bouncer.app["name"]
    try:
        run = run_role(name, {"pgbouncer_auth_mode": "auth_file", "pgbouncer_auth_file_users": [app]})
        assert run.rc == 0, run.output[-3000:]
        stored = bouncer.sql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{app}'")
        assert stored.startswith("SCRAM-SHA-256$")
        content = bouncer.host.file(AUTH_FILE).content_string
        assert f'"{app}" "{stored}"' in content.splitlines()
        assert bouncer.vars["pgbouncer_auth_user_password"] not in content
        assert not bouncer.show_config().get("auth_user"), "auth_user is still set in auth_file mode"

        served = bouncer.login(app, bouncer.app["password"], PGREQUIREAUTH="scram-sha-256")
        assert served.rc == 0 and served.stdout.strip() == app, served.stderr
        refused = bouncer.login(app, bouncer.app["password"] + "x")
        assert refused.rc != 0 and "SASL authentication failed" in refused.stderr, refused.stderr
    finally:
        run = run_role(name)
    assert run.rc == 0, run.output[-3000:]
    served = bouncer.login(app, bouncer.app["password"])
    assert served.rc == 0, served.stderr
