# Installed by tgstack.hybrid.redis. Talks to the local Redis as the default user, with the password
# from a root-only state file (never on a command line, so never in `ps`):
#   role          print the live replication state (INFO replication) of this node and which
#                 node of the group reports role:master, as JSON
#   settings      bring runtime settings to the state file's values (CONFIG SET), persist them with
#                 CONFIG REWRITE; --check only reports. Prints {"changed": bool, "names": [...]}.
#   acl-load      re-read the ACL file (ACL LOAD) and check that the default user's password works
# Password rotation: the state file also lists the previous default passwords. A node that still has
# an old one (its ACL file is loaded after the state file is written) is logged in to with it.
# Values Redis normalises are compared the way Redis prints them: memory sizes in bytes, booleans
# as yes/no, lists space-separated. Values are never printed (masterauth is one of them).
import argparse
import json
import re
import sys

import redis

UNITS = {"k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


def canonical(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return " ".join(canonical(item) for item in value)
    text = " ".join(str(value).split())
    match = re.fullmatch(r"([0-9]+)(k|kb|m|mb|g|gb)", text.lower())
    if match:
        return str(int(match.group(1)) * UNITS[match.group(2)])
    return text


def client(state, address=None, password=None):
    """A connection to ADDRESS (this node by default) that has logged in with the current password or,
    while a rotation is under way, a previous one."""
    candidates = [password] if password else [state["password"], *state.get("previous_passwords", [])]
    for index, candidate in enumerate(candidates):
        conn = redis.Redis(
            host=address or state["address"],
            port=state["port"],
            password=candidate,
            socket_timeout=3,
            socket_connect_timeout=3,
            decode_responses=True,
        )
        try:
            conn.ping()
        except redis.AuthenticationError:
            if index == len(candidates) - 1:
                raise
            continue
        return conn
    raise AssertionError("unreachable")


def replication(state, address):
    try:
        info = client(state, address).info("replication")
    except redis.RedisError as error:
        return {"running": False, "role": None, "error": " ".join(str(error).split())}
    return {
        "running": True,
        "role": info.get("role"),
        "master_host": info.get("master_host"),
        "master_port": info.get("master_port"),
        "link_status": info.get("master_link_status"),
        "connected_replicas": info.get("connected_slaves", 0),
        "error": None,
    }


def role(state):
    """This node's replication state, and the master the running nodes of the group report."""
    result = replication(state, state["address"])
    masters = []
    for peer in state["peers"]:
        address = peer["address"] or peer["name"]
        seen = result if peer["name"] == state["self"] else replication(state, address)
        if seen["role"] == "master":
            masters.append((seen["connected_replicas"] or 0, peer["name"], address))
    # two masters show up briefly while a failed master comes back: the one with replicas wins
    masters.sort(key=lambda item: (-item[0], item[1]))
    result["masters"] = [item[1] for item in masters]
    result["live_master"] = (
        {"name": masters[0][1], "address": masters[0][2], "port": state["port"]} if masters else None
    )
    return result


def settings(state, check):
    conn = client(state)
    desired = {name: canonical(value) for name, value in state["settings"].items()}
    current = conn.config_get(*desired) if desired else {}
    unknown = sorted(name for name in desired if name not in current)
    if unknown:
        raise SystemExit(f"Redis does not know the settings {', '.join(unknown)}: remove them from redis_settings")
    names = sorted(name for name, value in desired.items() if canonical(current[name]) != value)
    if not check:
        for name in names:
            try:
                conn.config_set(name, desired[name])
            except redis.ResponseError as error:
                raise SystemExit(f"CONFIG SET {name} was refused: {error}") from None
        if names:
            conn.config_rewrite()
    return {"changed": bool(names), "names": names}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", required=True)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("action", choices=["role", "settings", "acl-load"])
    args = parser.parse_args()
    with open(args.state, encoding="utf-8") as handle:
        state = json.load(handle)
    try:
        if args.action == "role":
            result = role(state)
        elif args.action == "settings":
            result = settings(state, args.check)
        else:
            client(state).acl_load()
            client(state, password=state["password"])
            result = {"changed": True}
    except redis.AuthenticationError as error:
        raise SystemExit(
            f"{args.action}: Redis refused the password of redis_password and the "
            f"{len(state.get('previous_passwords', []))} earlier ones this role set "
            f"({' '.join(str(error).split())}). Set redis_password to the password the default user has now; "
            "to change it, change it afterwards: the role rotates from the one that works."
        ) from None
    except redis.RedisError as error:
        raise SystemExit(f"{args.action}: {' '.join(str(error).split())}") from None
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
