# Installed by tgstack.hybrid.redis_sentinel. Reads passwords and wanted settings from a root-only
# state file (never from a command line, so never in `ps`):
#   master      print the master's address as the running Sentinels report it or, when none answers,
#               as the data nodes report it (role:master); {} in a new group
#   reconcile   bring the monitored master's settings (SENTINEL SET) and Sentinel's own settings
#               (SENTINEL CONFIG SET) to the state file's values; --check only reports.
#               Prints {"changed": bool, "names": [...]}; values are never printed.
#   relink      after the Sentinels' password changed on all of them: close the connections other
#               Sentinels hold to this one, so that they log in again with the new password (a
#               Sentinel whose login was refused keeps the link and counts this one as down)
# Current values come from Sentinel (SENTINEL MASTER, SENTINEL CONFIG GET) and, for the secrets it does
# not show, from the sentinel.conf it rewrites itself after every change.
# Password rotation: the state file also lists the Sentinels' previous passwords. A Sentinel that still
# has one is logged in to with it and given the new one (ACL SETUSER default, which is what requirepass
# sets; SENTINEL FLUSHCONFIG writes it to sentinel.conf as a hashed "user default" line).
import argparse
import hashlib
import json
import shlex
import sys

import redis


def client(host, port, username=None, password=None):
    return redis.Redis(
        host=host,
        port=int(port),
        username=username or None,
        password=password or None,
        socket_timeout=3,
        socket_connect_timeout=3,
        decode_responses=True,
    )


def sentinel_client(state, host, port):
    """(connection, password that worked): the current password first, then the previous ones."""
    candidates = [state["password"], *state.get("previous_passwords", [])]
    for index, candidate in enumerate(candidates):
        conn = client(host, port, password=candidate)
        try:
            conn.ping()
        except redis.AuthenticationError:
            if index == len(candidates) - 1:
                raise
            continue
        return conn, candidate
    raise AssertionError("unreachable")


def split(address):
    host, port = address.rsplit(":", 1)
    return host.strip("[]"), int(port)


def pairs(reply):
    if isinstance(reply, dict):
        return {str(key): str(value) for key, value in reply.items()}
    items = list(reply)
    return {str(items[i]): str(items[i + 1]) for i in range(0, len(items) - 1, 2)}


def find_master(state):
    for address in state["sentinels"]:
        try:
            answer = sentinel_client(state, *split(address))[0].execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", state["master_name"]
            )
        except redis.RedisError:
            continue
        if answer:
            return {"host": str(answer[0]), "port": int(answer[1]), "source": f"sentinel {address}"}
    masters = []
    for address in state["data_nodes"]:
        try:
            info = client(*split(address), state["auth_user"], state["auth_pass"]).info("replication")
        except redis.RedisError:
            continue
        if info.get("role") == "master":
            masters.append((-int(info.get("connected_slaves", 0)), address))
    if masters:
        host, port = split(sorted(masters)[0][1])
        return {"host": host, "port": port, "source": "data nodes"}
    return {}


def conf_values(path, master_name):
    """Settings Sentinel wrote to its config: the secrets SENTINEL MASTER does not show."""
    values = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            if len(words) == 4 and words[0] == "sentinel" and words[2] == master_name:
                values[words[1]] = words[3]
            elif len(words) == 3 and words[0] == "sentinel":
                values[words[1]] = words[2]
    return values


def reconcile(state, check):
    local, password = sentinel_client(state, state["address"], state["port"])
    name = state["master_name"]
    names = []
    if password != state["password"]:
        names.append("requirepass")
        if not check:
            digest = hashlib.sha256(state["password"].encode()).hexdigest()
            local.execute_command("ACL", "SETUSER", "default", "on", "resetpass", f"#{digest}")
    try:
        current = pairs(local.execute_command("SENTINEL", "MASTER", name))
    except redis.ResponseError as error:
        if "no such master" not in str(error).lower():
            raise
        master = find_master(state)
        if not master:
            raise SystemExit(f"Sentinel does not monitor {name} and no Sentinel or data node names a master") from None
        names.append("monitor")
        current = {}
        if not check:
            local.execute_command(
                "SENTINEL", "MONITOR", name, master["host"], master["port"], state["master_settings"]["quorum"]
            )
    written = conf_values(state["conf"], name)
    for key, wanted in state["master_settings"].items():
        have = current.get(key, written.get(key))
        if str(have) != str(wanted):
            names.append(key)
            if not check:
                local.execute_command("SENTINEL", "SET", name, key, str(wanted))
    for key, wanted in state["config_settings"].items():
        try:
            have = pairs(local.execute_command("SENTINEL", "CONFIG", "GET", key)).get(key, written.get(key))
        except redis.ResponseError:
            have = written.get(key)
        if str(have) != str(wanted):
            names.append(key)
            if not check:
                local.execute_command("SENTINEL", "CONFIG", "SET", key, str(wanted))
    if names and not check:
        local.execute_command("SENTINEL", "FLUSHCONFIG")
    return {"changed": bool(names), "names": names}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", required=True)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("action", choices=["master", "reconcile", "relink"])
    args = parser.parse_args()
    with open(args.state, encoding="utf-8") as handle:
        state = json.load(handle)
    try:
        if args.action == "master":
            result = find_master(state)
        elif args.action == "relink":
            local = sentinel_client(state, state["address"], state["port"])[0]
            closed = local.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            result = {"changed": True, "closed": int(closed)}
        else:
            result = reconcile(state, args.check)
    except redis.AuthenticationError as error:
        raise SystemExit(
            f"{args.action}: a Sentinel or data node refused the password ({' '.join(str(error).split())}). "
            "redis_sentinel_password must be the Sentinels' password now, or one this role set before (the role "
            "rotates from it); redis_sentinel_auth_user / redis_sentinel_auth_password must be a user of the "
            "data nodes."
        ) from None
    except redis.RedisError as error:
        raise SystemExit(f"{args.action}: {' '.join(str(error).split())}") from None
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
