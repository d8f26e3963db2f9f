"""Redis failover time on the lab: stop the master, time until every Sentinel reports a new one.

Each round: find the master all three Sentinels agree on, write a key through redis-py's Sentinel
client, stop redis-server on the master (`systemctl stop`), and poll every Sentinel
(SENTINEL GET-MASTER-ADDR-BY-NAME) every 100 ms until all of them report the same new master. Two
figures per round, both from the moment the stop command was issued: every Sentinel reports the new
master, and redis-py's Sentinel client has written to it. Then the old master is started again and
the round ends when it is linked as a replica and the group is healthy (every Sentinel sees two
replicas and the other two Sentinels). The lab's own settings apply (roles' defaults:
down-after-milliseconds 5000, quorum 2), so the figure is what the lab's operators get.

    source lab/bootstrap && lab/up && python3 bench/redis_failover.py [--rounds 3]

Bounded: every wait gives up after 90 s; the stopped node is always started again.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import redis
import redis.sentinel
from _lab import address, docker_exec, fail, group, host_vars, require_lab

MASTER_NAME = "tgstack"
SENTINEL_PORT = 26379
REDIS_PORT = 6379
LIMIT = 90.0


def pairs(reply) -> dict:
    """A SENTINEL MASTER / REPLICAS entry as a dict (RESP2 gives a flat list of names and values)."""
    return dict(zip(reply[::2], reply[1::2], strict=True)) if isinstance(reply, list) else reply


def wait_for(what: str, check, interval: float = 0.1):
    start = time.monotonic()
    last = None
    while time.monotonic() - start < LIMIT:
        try:
            last = check()
        except redis.RedisError as error:
            last = error
        else:
            if last:
                return last
        time.sleep(interval)
    fail(f"{what}: not within {LIMIT:.0f} s (last: {last!r})")
    return None


class Lab:
    def __init__(self) -> None:
        self.nodes = group("redis")
        self.sentinels = group("redis_sentinel")
        require_lab(sorted(set(self.nodes + self.sentinels)))
        self.vars = host_vars(self.nodes[0])

    def sentinel(self, host: str) -> redis.Redis:
        return redis.Redis(
            host=address(host),
            port=SENTINEL_PORT,
            password=self.vars["redis_sentinel_password"],
            socket_timeout=1,
            socket_connect_timeout=1,
            decode_responses=True,
        )

    def admin(self, host: str) -> redis.Redis:
        return redis.Redis(
            host=address(host), port=REDIS_PORT, password=self.vars["redis_password"], socket_timeout=2,
            socket_connect_timeout=2, decode_responses=True,
        )  # fmt: skip

    def app_client(self) -> redis.sentinel.Sentinel:
        return redis.sentinel.Sentinel(
            [(address(host), SENTINEL_PORT) for host in self.sentinels],
            sentinel_kwargs={"password": self.vars["redis_sentinel_password"], "socket_timeout": 1},
            username=self.vars.get("redis_acl_app_user", "tgstack_app"),
            password=self.vars["redis_acl_app_password"],
            socket_timeout=1,
            socket_connect_timeout=1,
        )

    def seen(self) -> dict[str, str | None]:
        result = {}
        for host in self.sentinels:
            try:
                answer = self.sentinel(host).execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
                result[host] = answer[0] if answer else None
            except redis.RedisError:
                result[host] = None
        return result

    def master(self) -> str:
        seen = set(wait_for("the Sentinels agree on a master", self.agreed).values())
        ip = seen.pop()
        return next(host for host in self.nodes if address(host) == ip)

    def agreed(self) -> dict | None:
        seen = self.seen()
        return seen if None not in seen.values() and len(set(seen.values())) == 1 else None

    def healthy(self) -> bool:
        for host in self.sentinels:
            info = self.sentinel(host).execute_command("SENTINEL", "MASTER", MASTER_NAME)
            fields = pairs(info)
            if int(fields["num-slaves"]) != len(self.nodes) - 1 or int(fields["num-other-sentinels"]) != len(
                self.sentinels
            ) - 1 or "s_down" in fields["flags"] or "o_down" in fields["flags"]:  # fmt: skip
                return False
            if self.sentinel(host).info("sentinel").get("sentinel_tilt", 0) != 0:
                return False
            replicas = self.sentinel(host).execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
            for replica in replicas:
                fields = pairs(replica)
                if fields.get("master-link-status") != "ok" or "down" in fields["flags"]:
                    return False
        return True


def one_round(lab: Lab, number: int) -> tuple[float, float]:
    wait_for("the group is healthy", lab.healthy, interval=0.5)
    old = lab.master()
    old_ip = address(old)
    client = lab.app_client()
    key = f"tgstack:bench:failover:{uuid.uuid4()}"
    client.master_for(MASTER_NAME).set(key, "before", ex=600)
    stopped = time.monotonic()
    docker_exec(old, "systemctl", "stop", "redis-server")
    try:
        moved = wait_for(
            "every Sentinel reports a new master",
            lambda: (seen := lab.agreed()) and old_ip not in seen.values() and seen,
        )
        promoted = time.monotonic() - stopped
        wait_for(
            "redis-py's Sentinel client writes to the new master",
            lambda: client.master_for(MASTER_NAME, socket_timeout=1).set(key, "after", ex=600),
        )
        written = time.monotonic() - stopped
    finally:
        docker_exec(old, "systemctl", "start", "redis-server")
    new_ip = next(iter(moved.values()))
    wait_for(
        f"{old} rejoins as a replica",
        lambda: lab.admin(old).info("replication").get("master_link_status") == "up",
        interval=0.5,
    )
    print(
        f"round {number}: master {old} ({old_ip}) stopped -> {new_ip}: every Sentinel reported it after "
        f"{promoted:.2f} s, the Sentinel client wrote to it after {written:.2f} s; {old} rejoined as a replica",
        flush=True,
    )
    return promoted, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    lab = Lab()
    promoted, written = [], []
    for number in range(1, args.rounds + 1):
        figures = one_round(lab, number)
        promoted.append(figures[0])
        written.append(figures[1])
    wait_for("the group is healthy", lab.healthy, interval=0.5)
    print(
        f"failover, median of {args.rounds}: every Sentinel reports the new master {statistics.median(promoted):.2f} s "
        f"after the stop, the Sentinel client writes again {statistics.median(written):.2f} s after it"
    )


if __name__ == "__main__":
    main()
