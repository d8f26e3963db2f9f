"""One running gateway per Telegram session, across hosts: a lease in Redis.

Telegram invalidates a session used from two places at once (AuthKeyDuplicatedError), so a second
gateway with the same session (a standby on another host, a `backfill` started by hand next to the
service) must wait instead of connecting. The lease is the key ``tgstack:gateway:lease:<session hash>``
holding the holder's name, set with NX and a TTL, renewed at a third of the TTL inside a WATCH/MULTI
transaction that checks the holder (the application's ACL user has no scripting). A holder that finds
the lease gone or taken (a Redis failover can lose a recent write) stops reading at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import typing as t

log = logging.getLogger("tgstack_gateway.lock")


class LeaseLost(RuntimeError):
    """Another gateway holds the session now."""


class SessionLease:
    def __init__(self, client: t.Any, session: str, ttl: float = 30.0, holder: str | None = None) -> None:
        digest = hashlib.sha256(session.encode()).hexdigest()[:16]
        self.key = f"tgstack:gateway:lease:{digest}"
        self.client = client
        self.ttl_ms = int(ttl * 1000)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"

    async def try_acquire(self) -> bool:
        return bool(await self.client.set(self.key, self.holder, nx=True, px=self.ttl_ms))

    async def acquire(self, on_wait: t.Callable[[str], None] | None = None) -> None:
        """Wait until the lease is ours (a standby waits here for as long as the holder runs)."""
        while not await self.try_acquire():
            holder = await self.client.get(self.key)
            if on_wait is not None:
                on_wait(holder.decode() if isinstance(holder, bytes) else str(holder))
            await asyncio.sleep(self.ttl_ms / 3000)

    async def renew(self) -> None:
        """Extend the lease if it is still ours; LeaseLost otherwise."""
        async with self.client.pipeline(transaction=True) as pipe:
            await pipe.watch(self.key)
            held = await pipe.get(self.key)
            if (held.decode() if isinstance(held, bytes) else held) != self.holder:
                raise LeaseLost(f"the Telegram session's lease {self.key} is held by {held!r} now, not by "
                                f"{self.holder}: this gateway stops reading")  # fmt: skip
            pipe.multi()
            pipe.pexpire(self.key, self.ttl_ms)
            await pipe.execute()

    async def keep(self, on_lost: t.Callable[[LeaseLost], None]) -> None:
        """Renew until cancelled; a lost lease calls ON_LOST. Redis being away is retried until the TTL runs out."""
        failures = 0
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                await self.renew()
                failures = 0
            except LeaseLost as error:
                on_lost(error)
                return
            except Exception as error:  # Redis away (a failover): the lease may still be valid, try again
                failures += 1
                log.warning("could not renew the session lease: %s", error)
                if failures >= 3:
                    on_lost(LeaseLost(f"the session lease could not be renewed for a whole TTL: {error}"))
                    return

    async def release(self) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            await pipe.watch(self.key)
            held = await pipe.get(self.key)
            if (held.decode() if isinstance(held, bytes) else held) == self.holder:
                pipe.multi()
                pipe.delete(self.key)
                await pipe.execute()
