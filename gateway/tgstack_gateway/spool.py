"""A local spool of batches the backends could not take yet, replayed in order when they return.

Each batch is one file, ``<sequence>.jsonl`` (one record per line), written to a temporary name, flushed
to disk (fsync) and renamed, so a crash leaves either the whole batch or nothing. Files are replayed in
sequence order and removed only after the caller has stored them. The spool is bounded: past
``max_bytes`` it refuses new batches (SpoolFull) and the gateway stops reading from its source
(backpressure) instead of filling the disk.
"""

from __future__ import annotations

import json
import os
import typing as t
from pathlib import Path

SUFFIX = ".jsonl"


class SpoolFull(RuntimeError):
    """The spool holds max_bytes already: stop reading from the source until it drains."""


class Spool:
    def __init__(self, directory: str | os.PathLike[str], max_bytes: int = 1 << 30) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob("*.tmp"):  # a write that a crash interrupted: never renamed
            leftover.unlink()
        files = self.files()
        self.next_sequence = int(files[-1].stem) + 1 if files else 1
        self.size = sum(path.stat().st_size for path in files)

    def files(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{SUFFIX}"), key=lambda path: int(path.stem))

    def __len__(self) -> int:
        return len(self.files())

    def put(self, records: t.Sequence[dict[str, t.Any]]) -> Path:
        """Store one batch durably; its path is the handle for remove()."""
        data = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records).encode()
        if self.size + len(data) > self.max_bytes:
            raise SpoolFull(
                f"the spool {self.directory} holds {self.size} bytes and a batch of {len(data)} would pass its "
                f"limit of {self.max_bytes}: the backends have been away too long; reading pauses until it drains"
            )
        final = self.directory / f"{self.next_sequence:012d}{SUFFIX}"
        temporary = final.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)
        self.next_sequence += 1
        self.size += len(data)
        return final

    def batches(self) -> t.Iterator[tuple[Path, list[dict[str, t.Any]]]]:
        """The spooled batches, oldest first, as (handle, records)."""
        for path in self.files():
            with open(path, encoding="utf-8") as handle:
                yield path, [json.loads(line) for line in handle if line.strip()]

    def remove(self, path: Path) -> None:
        """Forget a batch once it is stored."""
        size = path.stat().st_size
        path.unlink()
        self.size -= size
