"""The machine's package cache (lab/bootstrap: apt-cacher-ng in tgstack-apt-cache) and the lab hosts' apt.

- A lab host's apt goes through the cache: a package one host downloaded, the next host gets from the
  cache (the cache's log shows it served the second host without fetching it from the mirror again).
- A host whose cache is gone still installs, from the mirror, and quickly: the cache refusing
  connections, and an address where nothing answers at all (apt must not wait for it).
"""

from __future__ import annotations

import os
import time

import pytest
from labhost import run, start_lab_container

CACHE = "tgstack-apt-cache"
# a small package no role installs, so the cache cannot have it from the rest of the suite by chance
# before the first host below asks for it; its download is what the test follows
PACKAGE = "sl"


def on(host: str, command: str, timeout: int = 300):
    return run(["docker", "exec", host, "bash", "-c", command], timeout=timeout)


def cache_log() -> list[list[str]]:
    done = run(["docker", "exec", CACHE, "cat", "/var/log/apt-cacher-ng/apt-cacher.log"])
    assert done.returncode == 0, f"the package cache is not running: {done.stderr}"
    return [line.split("|") for line in done.stdout.splitlines() if line.count("|") >= 4]


def address(host: str) -> str:
    inspect = run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", host])
    return inspect.stdout.strip()


@pytest.fixture
def hosts(request):
    names = [f"tgstack-it-aptcache-{index}" for index in (1, 2)]
    yield names
    run(["docker", "rm", "-f", *names])


@pytest.mark.skipif(os.environ.get("TGSTACK_APT_CACHE") == "off", reason="TGSTACK_APT_CACHE=off: no package cache")
def test_the_second_host_gets_a_package_from_the_cache_not_the_mirror(hosts):
    first, second = hosts
    for name in hosts:
        start_lab_container(name)
    # what a run of the roles' apt tasks does: the index, then the package
    fetch = f"apt-get update -qq && apt-get install -y -qq --download-only {PACKAGE} && ls /var/cache/apt/archives"
    assert on(first, "tgstack-apt-proxy").stdout.strip() == f"http://{CACHE}:3142"
    done = on(first, fetch)
    assert done.returncode == 0 and f"{PACKAGE}_" in done.stdout, done.stdout + done.stderr
    before = len(cache_log())
    done = on(second, fetch)
    assert done.returncode == 0 and f"{PACKAGE}_" in done.stdout, done.stdout + done.stderr

    entries = cache_log()[before:]
    package_lines = [entry for entry in entries if f"/{PACKAGE}_" in entry[4]]
    served = [entry for entry in package_lines if entry[1] == "O" and entry[3] == address(second)]
    fetched = [entry for entry in package_lines if entry[1] == "I"]
    assert served, f"the cache served no {PACKAGE} package to {second}: {entries[-10:]}"
    assert not fetched, f"the cache fetched {PACKAGE} from the mirror again for the second host: {fetched}"


@pytest.mark.parametrize(
    "cache_address",
    [
        # the name resolves to the host itself, where nothing listens on 3142: refused at once
        pytest.param("127.0.0.1", id="cache refuses connections"),
        # an address on the default bridge that no container has: nothing answers at all
        pytest.param("172.17.255.254", id="nothing answers"),
    ],
)
def test_a_host_whose_cache_is_away_installs_from_the_mirror_without_waiting_for_it(cache_address, request):
    name = f"tgstack-it-aptcache-away-{request.node.callspec.id.split()[0]}"
    start_lab_container(name, apt_cache=cache_address)
    try:
        started = time.monotonic()
        assert on(name, "tgstack-apt-proxy").stdout.strip() == "DIRECT"
        asked = time.monotonic() - started
        done = on(name, f"apt-get update -qq && apt-get install -y -qq --download-only {PACKAGE}", timeout=240)
        seconds = time.monotonic() - started
        assert done.returncode == 0, done.stdout + done.stderr
        print(f"\ncache at {cache_address}: DIRECT after {asked:.1f} s, the install took {seconds:.1f} s")
        # the check gives up after 2 s; apt's own connection timeout to a proxy is 30 s and more
        assert asked < 5, f"asking for the cache took {asked:.1f} s"
        assert seconds < 120, f"the install took {seconds:.0f} s with the cache away"
    finally:
        run(["docker", "rm", "-f", name])
