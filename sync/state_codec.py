"""How the state packs the JSON payloads of its widest rows (contact snapshots, score details) on disk.

A snapshot's JSON repeats the same keys, property names and common values in every row; zstd with a dictionary
trained on the tenant's own rows stores a 1 KB snapshot in about 150 bytes, at a few microseconds a row. A packed
value is one byte naming the dictionary (0: none) and a zstd frame without magic, checksum or dictionary id (the
byte says which). A value starting with `{` is JSON as it was written before packing (read as is).

Dictionaries are kept per (tenant, kind), e.g. `contacts:hubspot`, in `codec_dicts`, trained once from the first
rows of that kind (until then rows are packed without one) and never changed or deleted, so every row ever written
stays readable. A dictionary written in a transaction that rolls back is forgotten with it (`forget`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import zstandard

from sync.db import Database, StateError, upsert_sql

#: Rows of a kind gathered before its dictionary is trained (fewer stay packed without one), and its size cap.
TRAIN_AT = 256
DICT_BYTES = 32 * 1024
LEVEL = 3
_JSON = ord("{")
_PARAMS = zstandard.ZstdCompressionParameters.from_level(
    LEVEL, format=zstandard.FORMAT_ZSTD1_MAGICLESS, write_checksum=0, write_content_size=1, write_dict_id=0)
_PLAIN = zstandard.ZstdCompressor(compression_params=_PARAMS)
_UNPLAIN = zstandard.ZstdDecompressor(format=zstandard.FORMAT_ZSTD1_MAGICLESS)
_ADD_DICT = upsert_sql("codec_dicts", ["tenant", "kind", "no", "data", "created_at"], ["tenant", "kind", "no"],
                       update=())


class Codec:
    """One tenant's packing of JSON payloads; one per `State` (not shared across threads)."""

    def __init__(self, db: Database, tenant: str) -> None:
        self.db = db
        self.tenant = tenant
        self._packers: dict[str, tuple[int, zstandard.ZstdCompressor]] = {}  # kind -> the dictionary writes use
        self._unpackers: dict[tuple[str, int], zstandard.ZstdDecompressor] = {}
        self._looked: set[str] = set()  # kinds whose stored dictionary was looked for
        self._samples: dict[str, list[bytes]] = {}  # kind -> rows gathered to train its dictionary

    def pack(self, kind: str, texts: Sequence[str | bytes]) -> list[bytes]:
        """The packed form of each JSON text, training the kind's dictionary once enough rows have been seen."""
        raw = [t.encode() if isinstance(t, str) else t for t in texts]
        no, packer = self._packer(kind, raw)
        head = bytes((no,))
        return [head + packer.compress(r) for r in raw]

    def unpack(self, kind: str, value: bytes | str) -> bytes | str:
        """The JSON text a stored value holds (bytes, or the str a pre-packing row holds)."""
        if isinstance(value, str):
            return value
        value = bytes(value)  # psycopg may hand back a memoryview
        no = value[0]
        if no == _JSON:
            return value
        if no == 0:
            return _UNPLAIN.decompress(value[1:])
        unpacker = self._unpackers.get((kind, no)) or self._load(kind, no)
        return unpacker.decompress(value[1:])

    def forget(self) -> None:
        """Drop what this process believes is stored (after a rollback, which may have taken a new dictionary)."""
        self._packers.clear()
        self._unpackers.clear()
        self._looked.clear()

    # ------------------------------------------------------------------ dictionaries
    def _packer(self, kind: str, raw: Sequence[bytes]) -> tuple[int, zstandard.ZstdCompressor]:
        if kind in self._packers:
            return self._packers[kind]
        if kind not in self._looked:
            self._looked.add(kind)
            row = self._newest(kind)
            if row is not None:
                return self._use(kind, row[0], bytes(row[1]))
        samples = self._samples.setdefault(kind, [])
        samples.extend(raw[: TRAIN_AT - len(samples)])
        if len(samples) < TRAIN_AT:
            return 0, _PLAIN
        del self._samples[kind]
        trained = train(samples)
        if trained is None:
            self._packers[kind] = (0, _PLAIN)  # rows too alike or too small to gain from one: never retried here
            return self._packers[kind]
        # Another process may have stored one first (or be storing it): theirs wins, ours is dropped.
        self.db.execute(_ADD_DICT, (self.tenant, kind, 1, trained, datetime.now(timezone.utc).isoformat()))
        row = self._newest(kind)
        return self._use(kind, row[0], bytes(row[1]))

    def _newest(self, kind: str) -> tuple[int, bytes] | None:
        return self.db.execute("SELECT no, data FROM codec_dicts WHERE tenant=? AND kind=? ORDER BY no DESC",
                               (self.tenant, kind)).fetchone()

    def _use(self, kind: str, no: int, data: bytes) -> tuple[int, zstandard.ZstdCompressor]:
        d = zstandard.ZstdCompressionDict(data)
        self._packers[kind] = (no, zstandard.ZstdCompressor(dict_data=d, compression_params=_PARAMS))
        self._unpackers[(kind, no)] = _decompressor(d)
        return self._packers[kind]

    def _load(self, kind: str, no: int) -> zstandard.ZstdDecompressor:
        row = self.db.execute("SELECT data FROM codec_dicts WHERE tenant=? AND kind=? AND no=?",
                              (self.tenant, kind, no)).fetchone()
        if row is None:
            raise StateError(f"state row of {kind} names packing dictionary {no}, which codec_dicts lacks "
                             f"(tenant {self.tenant}): the database was edited or restored in part")
        self._unpackers[(kind, no)] = _decompressor(zstandard.ZstdCompressionDict(bytes(row[0])))
        return self._unpackers[(kind, no)]


def _decompressor(d: zstandard.ZstdCompressionDict) -> zstandard.ZstdDecompressor:
    return zstandard.ZstdDecompressor(dict_data=d, format=zstandard.FORMAT_ZSTD1_MAGICLESS)


def train(samples: Sequence[bytes]) -> bytes | None:
    """A dictionary for rows like these, or None when zstd finds nothing to learn from them."""
    size = min(DICT_BYTES, sum(map(len, samples)) // 4)
    try:
        return zstandard.train_dictionary(size, list(samples)).as_bytes()
    except zstandard.ZstdError:
        return None
