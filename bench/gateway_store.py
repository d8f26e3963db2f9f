"""The gateway's Store alone, with the synthetic mix (duplicates, edits, deletions): events/s for a batch size
and a number of connections. Runs inside the gateway host, with the package found at PACKAGE and the host's
gateway settings, so that two versions of the store can be compared on the same lab:

    git archive 4ba453e gateway/tgstack_gateway | docker exec -i tgstack-lab-mq1 tar -x -C /var/tmp/old
    docker exec -i tgstack-lab-mq1 python3 - /var/tmp/old/gateway 500 1 < bench/gateway_store.py
    docker exec -i tgstack-lab-mq1 python3 - /usr/lib/tgstack-gateway 500 2 < bench/gateway_store.py

Each run writes EVENTS (default 40,000) events of 10 fresh chats (ids below -1150000000000); the gateway's
database user may not delete rows, so remove them afterwards as postgres:

    docker exec tgstack-lab-db1 runuser -u postgres -- psql -d tgstack \
        -c "DELETE FROM tgstack.messages WHERE chat_id <= -1150000000000"

Bounded by its event count; results in docs/benchmarks.md.
"""

import asyncio
import inspect
import sys
import time

PACKAGE, SIZE, LANES = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
EVENTS = int(sys.argv[4]) if len(sys.argv) > 4 else 40000
sys.path.insert(0, PACKAGE)

from tgstack_gateway.backends import Store  # noqa: E402 - the package given on the command line
from tgstack_gateway.config import load  # noqa: E402
from tgstack_gateway.events import DeleteEvent, MessageEvent, parse_record  # noqa: E402
from tgstack_gateway.synthetic import Mix, SyntheticLoad  # noqa: E402


async def main() -> None:
    config = load("/etc/tgstack-gateway/gateway.yml", "/etc/tgstack-gateway/secrets.env")
    options = {"lanes": LANES} if "lanes" in inspect.signature(Store).parameters else {}
    store = Store(config.postgres_dsn, config.secrets["TGSTACK_POSTGRES_PASSWORD"], **options)
    first_chat = -1150000000000 - int(time.time() * 10) % 1000000 * 10
    events = [parse_record(record) for record in SyntheticLoad(chats=10, seed=5, first_chat=first_chat,
                                                               mix=Mix()).records(EVENTS)]  # fmt: skip
    started = time.monotonic()
    for start in range(0, len(events), SIZE):
        chunk = events[start : start + SIZE]
        await store.store([event.row for event in chunk if isinstance(event, MessageEvent)],
                          [event for event in chunk if isinstance(event, DeleteEvent)])  # fmt: skip
    seconds = time.monotonic() - started
    print(f"{PACKAGE}: batch {SIZE}, {options.get('lanes', 1)} connection(s): {len(events) / seconds:.0f} events/s")

    await store.close()


asyncio.run(main())
