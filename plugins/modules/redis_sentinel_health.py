#!/usr/bin/python
# Copyright (c) 2026, tgstack.hybrid maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports.

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_sentinel_health
short_description: Check that a Redis Sentinel group agrees on its master and that its replicas are linked
version_added: 0.1.0
description:
  - Asks every Sentinel in O(sentinels) for the address of the master O(master_name) (C(SENTINEL
    GET-MASTER-ADDR-BY-NAME)), whether it can reach a quorum and a failover majority (C(SENTINEL CKQUORUM)),
    how many other Sentinels and replicas it knows (C(SENTINEL MASTER)) and whether it is in TILT mode
    (C(INFO sentinel), C(sentinel_tilt)).
  - Then asks the master and every replica the Sentinels know for C(INFO replication). The master must
    report C(role:master), each replica C(master_link_status:up) with a lag of at most O(max_lag) seconds.
  - The group is healthy when all Sentinels answer, agree on the master, pass CKQUORUM, are not in TILT,
    each knows the others, and at least O(min_replicas) replicas are linked within the lag bound.
  - When the group is unhealthy (after waiting up to O(timeout) seconds with O(wait=true)) the module
    fails with a message that lists every problem; the same structured data is returned either way.
  - Read-only; never reports a change. Runs on the host it is delegated to, which needs redis-py
    (Debian package python3-redis) and network access to the Sentinels and data nodes.
author:
  - tgstack.hybrid maintainers (@tgstack)
options:
  sentinels:
    description:
      - The Sentinels to ask, each V(host:port) (V([v6addr]:port) for IPv6); a missing port means V(26379).
    type: list
    elements: str
    required: true
  master_name:
    description:
      - The name the Sentinels monitor the master under.
    type: str
    required: true
  sentinel_username:
    description:
      - User to log in to the Sentinels as; empty means the default user.
    type: str
    default: ''
  sentinel_password:
    description:
      - Password of the Sentinels (their C(requirepass)); empty when they have none.
    type: str
    default: ''
  redis_username:
    description:
      - User to log in to the data nodes as for C(INFO replication) (needs the C(info) command).
    type: str
    default: ''
  redis_password:
    description:
      - Password of O(redis_username) on the data nodes.
    type: str
    default: ''
  min_replicas:
    description:
      - How many replicas must be linked (C(master_link_status:up)) within O(max_lag).
    type: int
    default: 1
  max_lag:
    description:
      - Largest acceptable replication lag in seconds (the master's view of the replica's last
        acknowledgement, or the replica's C(master_last_io_seconds_ago) when the master does not list it).
    type: int
    default: 10
  wait:
    description:
      - Ask again every O(poll_interval) seconds until the group is healthy or O(timeout) seconds have passed.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait with O(wait=true).
    type: int
    default: 60
  poll_interval:
    description:
      - Seconds between two rounds of questions with O(wait=true).
    type: float
    default: 1.0
  connect_timeout:
    description:
      - Seconds to wait for each connection and each answer.
    type: float
    default: 2.0
requirements:
  - redis-py on the host the module runs on (Debian package python3-redis).
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs the same questions.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to show.
notes:
  - A replica that Sentinel flags as down (for example the old master while it is stopped) counts as a problem.
"""

EXAMPLES = r"""
- name: Wait until all Sentinels agree and the replicas are linked
  tgstack.hybrid.redis_sentinel_health:
    sentinels: "{{ groups['redis'] | map('extract', hostvars, ['ansible_facts', 'default_ipv4', 'address'])
                   | map('regex_replace', '$', ':26379') | list }}"
    master_name: tgstack
    sentinel_password: "{{ vault_redis_sentinel_password }}"
    redis_username: tgstack_sentinel
    redis_password: "{{ vault_redis_sentinel_acl_password }}"
    wait: true
    timeout: 60
  register: health

- name: Show the master
  ansible.builtin.debug:
    msg: "master at {{ health.master.host }}:{{ health.master.port }}"
"""

RETURN = r"""
healthy:
  description: Whether every check passed.
  returned: always
  type: bool
  sample: true
problems:
  description: One line per problem found in the last round; empty when healthy.
  returned: always
  type: list
  elements: str
  sample: ["sentinel 10.0.0.3:26379 is unreachable: Error 111 connecting to 10.0.0.3:26379. Connection refused."]
master:
  description: The master the reachable Sentinels agree on (the majority's answer when they disagree); null if none.
  returned: always
  type: dict
  sample: {host: 10.0.0.2, port: 6379, address: "10.0.0.2:6379", role: master}
sentinels:
  description: What each Sentinel reported.
  returned: always
  type: list
  elements: dict
  sample:
    - address: "10.0.0.2:26379"
      reachable: true
      master: "10.0.0.2:6379"
      ckquorum: true
      ckquorum_message: "OK 3 usable Sentinels. Quorum and failover authorization can be reached"
      tilt: false
      known_sentinels: 3
      known_replicas: 2
      error: null
replicas:
  description: Each replica the Sentinels know, with its link state and lag.
  returned: always
  type: list
  elements: dict
  sample:
    - address: "10.0.0.3:6379"
      flags: slave
      link_status: up
      lag: 0
      master: "10.0.0.2:6379"
      error: null
attempts:
  description: Rounds of questions asked.
  returned: always
  type: int
  sample: 1
elapsed:
  description: Seconds spent, including waiting.
  returned: always
  type: float
  sample: 0.12
"""

import time
import typing as t
from collections import Counter

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.tgstack.hybrid.plugins.module_utils.redis import (
    HAS_REDIS,
    REDIS_IMPORT_ERROR,
    ConnectionFailed,
    TgstackRedisError,
    connect,
    error_text,
    format_address,
    parse_address,
)

DEFAULT_SENTINEL_PORT = 26379
DOWN_FLAGS = ("s_down", "o_down", "disconnected")


def _ask_sentinel(address: str, params: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Everything one Sentinel says about the master; problems are collected by the caller."""
    name = params["master_name"]
    report: dict[str, t.Any] = {
        "address": address,
        "reachable": False,
        "master": None,
        "ckquorum": False,
        "ckquorum_message": None,
        "tilt": None,
        "known_sentinels": None,
        "known_replicas": None,
        "replicas": [],
        "error": None,
    }
    try:
        host, port = parse_address(address, DEFAULT_SENTINEL_PORT)
        client = connect(
            host, port, params["sentinel_username"], params["sentinel_password"], params["connect_timeout"]
        )
    except TgstackRedisError as error:
        report["error"] = str(error)
        return report
    report["reachable"] = True
    try:
        report["tilt"] = bool(int(client.info("sentinel").get("sentinel_tilt", 0)))
        master_addr = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
        if not master_addr:
            report["error"] = f"does not monitor a master named {name}"
            return report
        report["master"] = format_address(str(master_addr[0]), int(master_addr[1]))
        try:
            report["ckquorum_message"] = str(client.execute_command("SENTINEL", "CKQUORUM", name))
            report["ckquorum"] = True
        except Exception as error:  # redis.ResponseError: NOQUORUM ...
            report["ckquorum_message"] = error_text(error)
        state = _pairs(client.execute_command("SENTINEL", "MASTER", name))
        report["known_sentinels"] = int(state.get("num-other-sentinels", 0)) + 1
        report["known_replicas"] = int(state.get("num-slaves", 0))
        report["replicas"] = [_pairs(entry) for entry in client.execute_command("SENTINEL", "REPLICAS", name)]
    except Exception as error:  # the connection dropped or the Sentinel refused a command
        report["error"] = error_text(error)
    finally:
        client.close()
    return report


def _pairs(reply: t.Any) -> dict[str, str]:
    """A flat [key, value, ...] reply (RESP2) or a map (RESP3) as a dict of strings."""
    if isinstance(reply, dict):
        return {str(key): str(value) for key, value in reply.items()}
    items = list(reply)
    return {str(items[i]): str(items[i + 1]) for i in range(0, len(items) - 1, 2)}


def _replication_info(address: str, params: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    host, port = parse_address(address, 6379)
    client = connect(host, port, params["redis_username"], params["redis_password"], params["connect_timeout"])
    try:
        return dict(client.info("replication"))
    finally:
        client.close()


def _master_lags(master_info: t.Mapping[str, t.Any]) -> dict[str, int]:
    """Lag in seconds per replica address as the master sees it (INFO replication slaveN lines)."""
    lags: dict[str, int] = {}
    for key, value in master_info.items():
        if key.startswith("slave") and isinstance(value, dict) and "ip" in value:
            lags[format_address(str(value["ip"]), int(value["port"]))] = int(value.get("lag", -1))
    return lags


def check_once(params: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """One round of questions; returns the module's result fields."""
    problems: list[str] = []
    sentinels = [_ask_sentinel(address, params) for address in params["sentinels"]]
    expected_sentinels = len(params["sentinels"])

    for report in sentinels:
        where = f"sentinel {report['address']}"
        if not report["reachable"]:
            # the connection error names the address already ("<address> is unreachable: ...")
            problems.append(f"sentinel {report['error']}")
            continue
        if report["error"]:
            problems.append(f"{where}: {report['error']}")
        if report["tilt"]:
            problems.append(f"{where} is in TILT mode (sentinel_tilt:1)")
        if report["master"] and not report["ckquorum"]:
            problems.append(f"{where}: CKQUORUM failed: {report['ckquorum_message']}")
        if report["known_sentinels"] is not None and report["known_sentinels"] < expected_sentinels:
            problems.append(
                f"{where} knows {report['known_sentinels']} Sentinels (itself included), expected {expected_sentinels}"
            )

    votes = Counter(report["master"] for report in sentinels if report["master"])
    master: dict[str, t.Any] | None = None
    if len(votes) > 1:
        listing = "; ".join(
            f"{address} ({', '.join(r['address'] for r in sentinels if r['master'] == address)})"
            for address in sorted(votes)
        )
        problems.append(f"the Sentinels disagree on the master: {listing}")
    if votes:
        address = votes.most_common(1)[0][0]
        host, port = parse_address(address, 6379)
        master = {"host": host, "port": port, "address": address, "role": None}
    elif any(report["reachable"] for report in sentinels):
        problems.append(f"no Sentinel knows the address of master {params['master_name']}")
    else:
        problems.append("no Sentinel is reachable")

    replicas: list[dict[str, t.Any]] = []
    if master is not None:
        master_info: dict[str, t.Any] = {}
        try:
            master_info = _replication_info(master["address"], params)
            master["role"] = master_info.get("role")
            if master["role"] != "master":
                problems.append(f"master {master['address']} reports role:{master['role']}")
        except TgstackRedisError as error:
            problems.append(f"master {master['address']}: {error}")
        lags = _master_lags(master_info)

        # the replicas as the Sentinel with the most complete view (of those naming this master) lists them
        views = [r["replicas"] for r in sentinels if r["master"] == master["address"]]
        known = max(views, key=len) if views else []
        for entry in known:
            address = format_address(entry.get("ip", ""), int(entry.get("port", 0)))
            replica = {
                "address": address,
                "flags": entry.get("flags", ""),
                "link_status": None,
                "lag": None,
                "master": None,
                "error": None,
            }
            replicas.append(replica)
            down = [flag for flag in DOWN_FLAGS if flag in replica["flags"].split(",")]
            if down:
                problems.append(f"replica {address} is flagged {','.join(down)} by the Sentinels")
                continue
            try:
                info = _replication_info(address, params)
            except TgstackRedisError as error:
                replica["error"] = str(error)
                problems.append(f"replica {address}: {error}")
                continue
            replica["link_status"] = info.get("master_link_status")
            if info.get("master_host") is not None:
                replica["master"] = format_address(str(info["master_host"]), int(info.get("master_port", 0)))
            replica["lag"] = lags.get(address, info.get("master_last_io_seconds_ago"))
            if info.get("role") != "slave":
                problems.append(f"replica {address} reports role:{info.get('role')}")
            elif replica["link_status"] != "up":
                problems.append(f"replica {address} has master_link_status:{replica['link_status']}")
            elif replica["lag"] is None or int(replica["lag"]) < 0 or int(replica["lag"]) > params["max_lag"]:
                problems.append(f"replica {address} lags {replica['lag']} s, more than {params['max_lag']} s")
        linked = [r for r in replicas if r["link_status"] == "up" and r["lag"] is not None]
        linked = [r for r in linked if 0 <= int(r["lag"]) <= params["max_lag"]]
        if len(linked) < params["min_replicas"]:
            problems.append(
                f"{len(linked)} replicas are linked within {params['max_lag']} s, expected at least "
                f"{params['min_replicas']}"
            )

    for report in sentinels:
        report.pop("replicas", None)
    return {
        "healthy": not problems,
        "problems": problems,
        "master": master,
        "sentinels": sentinels,
        "replicas": replicas,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            sentinels=dict(type="list", elements="str", required=True),
            master_name=dict(type="str", required=True),
            sentinel_username=dict(type="str", default=""),
            sentinel_password=dict(type="str", default="", no_log=True),
            redis_username=dict(type="str", default=""),
            redis_password=dict(type="str", default="", no_log=True),
            min_replicas=dict(type="int", default=1),
            max_lag=dict(type="int", default=10),
            wait=dict(type="bool", default=False),
            timeout=dict(type="int", default=60),
            poll_interval=dict(type="float", default=1.0),
            connect_timeout=dict(type="float", default=2.0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    doing = f"checking the Sentinel group of {params['master_name']}"
    if not HAS_REDIS:
        module.fail_json(
            msg=f"{doing}: {missing_required_lib('redis (Debian: python3-redis)')}", exception=str(REDIS_IMPORT_ERROR)
        )
    if not params["sentinels"]:
        module.fail_json(msg=f"{doing}: sentinels is empty: list the Sentinels as host:port")
    for name in ("min_replicas", "max_lag", "timeout"):
        if params[name] < 0:
            module.fail_json(msg=f"{doing}: {name} must not be negative")
    try:
        for address in params["sentinels"]:
            parse_address(address, DEFAULT_SENTINEL_PORT)
    except TgstackRedisError as error:
        module.fail_json(msg=f"{doing}: sentinels: {error}")

    started = time.monotonic()
    deadline = started + (params["timeout"] if params["wait"] else 0)
    attempts = 0
    while True:
        attempts += 1
        try:
            result = check_once(params)
        except (ConnectionFailed, TgstackRedisError) as error:
            module.fail_json(msg=f"{doing}: {error}", changed=False)
        if result["healthy"] or time.monotonic() + params["poll_interval"] > deadline:
            break
        time.sleep(params["poll_interval"])
    result.update(attempts=attempts, elapsed=round(time.monotonic() - started, 2), changed=False)
    if not result["healthy"]:
        waited = f" after {result['elapsed']} s" if params["wait"] else ""
        module.fail_json(msg=f"{doing}: unhealthy{waited}: " + "; ".join(result["problems"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
