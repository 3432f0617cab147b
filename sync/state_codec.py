"""How the state packs the JSON payloads of its widest rows (contact snapshots, score details) on disk.

A snapshot's JSON repeats the same keys, property names and common values in every row; zstd with a dictionary
trained on the tenant's own rows stores a 1 KB snapshot in about 150 bytes, at a few microseconds a row. A packed
value is one byte naming the dictionary (0: none) and a zstd frame without magic, checksum or dictionary id (the
byte says which). A value starting with `{` is JSON as it was written before packing (read as is).

Dictionaries are kept per (tenant, kind), e.g. `contacts:hubspot`, in `codec_dicts`, trained from the first rows
of that kind (until then rows are packed without one) and never changed or deleted, so every row ever written
stays readable. A payload's shape drifts (a backfill's first snapshots are as pulled, its later ones carry the
scores written back): when a dictionary packs recent rows clearly worse than it packed its first ones, one trained
on the recent rows is tried, and if clearly better becomes the kind's next generation (new rows use it). A dictionary written in a transaction that
rolls back is forgotten with it (`forget`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime, timezone

import zstandard

from sync.db import Database, StateError, upsert_sql

#: Rows of a kind gathered before its dictionary is trained (fewer stay packed without one), and its size cap.
TRAIN_AT = 256
DICT_BYTES = 32 * 1024
LEVEL = 3
#: A newly trained dictionary replaces the one in use only if it packs the recent rows in under GAIN of the bytes;
#: a kind has at most GENERATIONS of them.
GAIN = 0.8
GENERATIONS = 8
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
        self._recent: dict[str, deque[bytes]] = {}  # kind -> the last rows packed with its dictionary
        self._window: dict[str, list[float]] = {}  # kind -> how well its dictionary packs (see _watch)

    def pack(self, kind: str, texts: Sequence[str | bytes]) -> list[bytes]:
        """The packed form of each JSON text, training the kind's dictionary once enough rows have been seen."""
        raw = [t.encode() if isinstance(t, str) else t for t in texts]
        out: list[bytes] = []
        for i in range(0, len(raw), TRAIN_AT):  # a long batch can train or replace the dictionary midway
            part = raw[i : i + TRAIN_AT]
            no, packer = self._packer(kind, part)
            head = bytes((no,))
            packed = [head + packer.compress(r) for r in part]
            if no:
                self._watch(kind, no, part, packed)
            out += packed
        return out

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
        self._recent.clear()
        self._window.clear()

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
        return self._adopt(kind, 1, trained)

    def _adopt(self, kind: str, no: int, trained: bytes) -> tuple[int, zstandard.ZstdCompressor]:
        # Another process may have stored one first (or be storing it): theirs wins, ours is dropped.
        self.db.execute(_ADD_DICT, (self.tenant, kind, no, trained, datetime.now(timezone.utc).isoformat()))
        row = self._newest(kind)
        return self._use(kind, row[0], bytes(row[1]))

    def _watch(self, kind: str, no: int, raw: Sequence[bytes], packed: Sequence[bytes]) -> None:
        """Every TRAIN_AT rows, compare how well the dictionary packs them with how well it packed its first ones
        (or, for a retrained one, the rows it was tried on); past 1/GAIN of that, a dictionary trained on half the
        recent rows is tried on the other half."""
        recent = self._recent.setdefault(kind, deque(maxlen=TRAIN_AT))
        recent.extend(raw)
        window = self._window.setdefault(kind, [0, 0, 0, 0.0])  # rows, raw bytes, packed bytes, first ratio
        window[0] += len(raw)
        window[1] += sum(map(len, raw))
        window[2] += sum(map(len, packed))
        if window[0] < TRAIN_AT:
            return
        ratio, first = window[2] / window[1], window[3]
        window[:3] = 0, 0, 0
        if not first or ratio * GAIN <= first or no >= GENERATIONS:
            window[3] = first or ratio
            return
        window[3] = ratio  # the new normal, unless a better dictionary is found
        samples = list(recent)
        trained = train(samples[::2])
        if trained is None:
            return
        old = self._packers[kind][1]
        new = zstandard.ZstdCompressor(dict_data=zstandard.ZstdCompressionDict(trained), compression_params=_PARAMS)
        held_out = samples[1::2]
        gained = sum(len(new.compress(r)) for r in held_out)
        if gained < GAIN * sum(len(old.compress(r)) for r in held_out):
            self._adopt(kind, no + 1, trained)
            self._window[kind] = [0, 0, 0, gained / sum(map(len, held_out))]  # judged by what it did on them

    def _newest(self, kind: str) -> tuple[int, bytes] | None:
        return self.db.execute("SELECT no, data FROM codec_dicts WHERE tenant=? AND kind=? ORDER BY no DESC",
                               (self.tenant, kind)).fetchone()

    def _use(self, kind: str, no: int, data: bytes) -> tuple[int, zstandard.ZstdCompressor]:
        d = zstandard.ZstdCompressionDict(data)
        self._packers[kind] = (no, zstandard.ZstdCompressor(dict_data=d, compression_params=_PARAMS))
        self._unpackers[(kind, no)] = _decompressor(d)
        self._recent.pop(kind, None)
        self._window.pop(kind, None)
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
