"""The state's records: contact snapshots, cross-CRM links and identity decisions, engagements, the dirty set.

A mixin of `State` (sync/state.py): every statement is scoped to `self.tenant`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from mapping.model import Contact, Engagement, EngagementKind, Stage
from sync.db import Database, marks, upsert_sql
from sync.state_codec import Codec
from sync.state_rows import (
    _DIRTY_KEY,
    _REWRITE_SNAPSHOT,
    _UPSERT_CONTACT,
    _from_ms,
    _iso,
    _ms,
    contact_from_json,
    norm_value,
    snapshot,
)


class RecordsMixin:
    """The state's records: contact snapshots, cross-CRM links and identity decisions, engagements, the dirty set."""

    db: Database
    tenant: str
    codec: Codec

    # ------------------------------------------------------------- contacts
    def upsert_contacts(self, contacts: Sequence[Contact], run_id: str) -> list[str]:
        """Store snapshots; return the ids whose content changed (they need re-scoring)."""
        if not contacts:
            return []
        src = contacts[0].source
        ids = [c.id for c in contacts]
        known = dict(
            self.db.execute(
                f"SELECT id, hash FROM contacts WHERE tenant=? AND source=? AND id IN ({marks(len(ids))})",
                (self.tenant, src, *ids),
            ).fetchall()
        )
        fresh, echoes = [], []
        for c in contacts:
            text, h = snapshot(c)
            if known.get(c.id) == h:
                # Nothing but the modification time moved (our own write echoing back, most often): the stored
                # snapshot keeps its time, so "most recent value" profile rules see when a person last changed it.
                echoes.append((run_id, self.tenant, c.source, c.id))
                continue
            fresh.append((c, text, h))
        changed = [c.id for c, _, _ in fresh]
        self.db.executemany(_UPSERT_CONTACT, self._contact_rows(fresh, run_id))
        self.db.executemany("UPDATE contacts SET seen_run=? WHERE tenant=? AND source=? AND id=?", echoes)
        self._set_links([c for c in contacts if c.id in set(changed)])
        self.mark_dirty(src, changed)
        return changed

    def _set_links(self, contacts: Sequence[Contact]) -> None:
        if not contacts:
            return
        self.db.executemany("DELETE FROM record_links WHERE tenant=? AND source=? AND id=?",
                            [(self.tenant, c.source, c.id) for c in contacts])
        rows = [(self.tenant, c.source, c.id, t) for c in contacts for t in c.links]
        if rows:
            self.db.executemany("INSERT INTO record_links (tenant, source, id, target) VALUES (?,?,?,?)", rows)

    def put_contact(self, c: Contact, run_id: str) -> None:
        """Store a record leadsync itself created (a hand-off), as if pulled: its echo is then no change."""
        self.db.executemany(_UPSERT_CONTACT, self._contact_rows([(c, *snapshot(c))], run_id))
        self._set_links([c])

    def _contact_rows(self, snapshots: Sequence[tuple[Contact, str, str]], run_id: str) -> list[tuple[Any, ...]]:
        """Rows of `_UPSERT_CONTACT` for (contact, snapshot JSON, hash) of one source, the JSON packed."""
        if not snapshots:
            return []
        packed = self.codec.pack(f"contacts:{snapshots[0][0].source}", [text for _, text, _ in snapshots])
        return [(self.tenant, c.source, c.id, c.object_type, c.email.strip().lower() if c.email else None,
                 int(c.archived), data, h, run_id)
                for (c, _, h), data in zip(snapshots, packed, strict=True)]

    def _rewrite_rows(self, source: str, contacts: Sequence[Contact]) -> list[tuple[Any, ...]]:
        """Rows of `_REWRITE_SNAPSHOT` for these contacts of one source."""
        snaps = [snapshot(c) for c in contacts]
        packed = self.codec.pack(f"contacts:{source}", [text for text, _ in snaps])
        return [(int(c.archived), data, h, self.tenant, source, c.id)
                for c, (_, h), data in zip(contacts, snaps, packed, strict=True)]

    # ------------------------------------------------------------- identity (persons across CRMs)
    def records(self, keys: Iterable[str]) -> dict[str, Contact]:
        """Stored records by `source:id` key, whatever their source."""
        by_source: dict[str, list[str]] = {}
        for k in keys:
            source, _, rid = k.partition(":")
            by_source.setdefault(source, []).append(rid)
        out: dict[str, Contact] = {}
        for source, ids in by_source.items():
            out.update({c.key: c for c in self.contacts(source, ids).values()})
        return out

    def keys_by_emails(self, emails: Iterable[str]) -> list[str]:
        """Record keys (any source) whose normalised email is one of `emails`: keys only, so a batch fetches
        (and parses) just the records it does not hold yet."""
        return self._keys_where("contacts", "email", {e for e in emails if e})

    def keys_linking_to(self, keys: Iterable[str]) -> list[str]:
        """Records that name any of `keys` as the same human (the reverse of `Contact.links`)."""
        return self._keys_where("record_links", "target", set(keys))

    def _keys_where(self, table: str, column: str, values: set[str]) -> list[str]:
        wanted = sorted(values)
        out: list[str] = []
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            out += [f"{s}:{rid}" for s, rid in self.db.execute(
                f"SELECT source, id FROM {table} WHERE tenant=? AND {column} IN ({marks(len(part))})",
                (self.tenant, *part))]
        return out

    def identity_refs(self) -> Iterator[tuple[str, str, str, str | None, str]]:
        """(source, id, object_type, email, data) of every record, for a whole-state identity pass."""
        for source, rid, object_type, email, data in self.db.execute(
                "SELECT source, id, object_type, email, data FROM contacts WHERE tenant=? ORDER BY source, id",
                (self.tenant,)):
            yield source, rid, object_type, email, self._snapshot_text(source, data)

    def _snapshot_text(self, source: str, data: bytes | str) -> str:
        """A stored snapshot's JSON text (the state keeps it packed, sync/state_codec.py)."""
        text = self.codec.unpack(f"contacts:{source}", data)
        return text if isinstance(text, str) else text.decode()

    def add_override(self, kind: str, a: str, b: str = "") -> None:
        """A person's identity decision; a new one about a record replaces what it said before."""
        self.db.execute("DELETE FROM identity_overrides WHERE tenant=? AND (a=? OR b=?)", (self.tenant, a, a))
        if b:
            self.db.execute("DELETE FROM identity_overrides WHERE tenant=? AND kind='unlink' AND a=?", (self.tenant, b))
        self.db.execute("INSERT INTO identity_overrides (tenant, kind, a, b, at) VALUES (?,?,?,?,?)",
                        (self.tenant, kind, a, b, _iso(datetime.now(timezone.utc))))

    def overrides(self, keys: Iterable[str] | None = None) -> list[tuple[str, str, str]]:
        """(kind, a, b) of the manual decisions touching `keys` (all of them when None)."""
        if keys is None:
            return [tuple(r) for r in self.db.execute(
                "SELECT kind, a, b FROM identity_overrides WHERE tenant=? ORDER BY at, a", (self.tenant,))]
        wanted = sorted(set(keys))
        out: set[tuple[str, str, str]] = set()
        for i in range(0, len(wanted), 400):
            part = tuple(wanted[i : i + 400])
            q = (f"SELECT kind, a, b FROM identity_overrides WHERE tenant=? AND (a IN ({marks(len(part))}) "
                 f"OR b IN ({marks(len(part))}))")
            out.update(tuple(r) for r in self.db.execute(q, (self.tenant, *part, *part)))
        return sorted(out)

    def archive_contact(self, source: str, contact_id: str) -> None:
        """A record leadsync deleted (undo): kept as history, no longer anyone's live record."""
        c = self.contacts(source, [contact_id]).get(contact_id)
        if c is not None:
            self._rewrite_snapshot(replace(c, archived=True))

    def set_managed(self, source: str, contact_id: str, values: dict[str, str | None],
                    stage: Stage | None = None, link: str | None = None) -> None:
        """Record what we wrote (the stage it means, the link it set), so the write echoing back is no change."""
        self.record_writes(source, [(contact_id, values, stage, link)])

    def record_writes(self, source: str,
                      writes: Sequence[tuple[str, Mapping[str, str | None], Stage | None, str | None]]) -> None:
        """`set_managed` for a batch of accepted writes: one read and one write of the snapshots, not one each."""
        found = self.contacts(source, [w[0] for w in writes])
        changed: dict[str, Contact] = {}
        linked = []
        for contact_id, values, stage, link in writes:
            c = found.get(contact_id)
            if c is None:
                continue
            managed = dict(c.managed)
            managed.update({k: norm_value(v) for k, v in values.items()})
            links = tuple(sorted({*c.links, link})) if link else c.links
            c = replace(c, managed=managed, lifecycle_stage=stage or c.lifecycle_stage, links=links)
            found[contact_id] = changed[contact_id] = c
            if link:
                linked.append(c)
        self.db.executemany(_REWRITE_SNAPSHOT, self._rewrite_rows(source, list(changed.values())))
        self._set_links(linked)

    def set_stage(self, source: str, contact_id: str, stage: Stage) -> None:
        """Keep the snapshot's canonical stage in step with what we wrote, so its echo is no change."""
        c = self.contacts(source, [contact_id]).get(contact_id)
        if c is not None:
            self._rewrite_snapshot(replace(c, lifecycle_stage=stage))

    def _rewrite_snapshot(self, c: Contact) -> None:
        self.db.executemany(_REWRITE_SNAPSHOT, self._rewrite_rows(c.source, [c]))

    def contacts(self, source: str, ids: Iterable[str]) -> dict[str, Contact]:
        ids = list(ids)
        out: dict[str, Contact] = {}
        kind = f"contacts:{source}"
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            for (data,) in self.db.execute(
                f"SELECT data FROM contacts WHERE tenant=? AND source=? AND id IN ({marks(len(part))})",
                (self.tenant, source, *part),
            ):
                c = contact_from_json(self.codec.unpack(kind, data))
                out[c.id] = c
        return out

    def contact_by_email(self, email: str, source: str | None = None) -> list[Contact]:
        q = "SELECT source, data FROM contacts WHERE tenant=? AND email=?" + (" AND source=?" if source else "")
        args = (self.tenant, email.strip().lower()) + ((source,) if source else ())
        return [contact_from_json(self.codec.unpack(f"contacts:{s}", d)) for s, d in self.db.execute(q, args)]

    def ids_by_email(self, source: str, emails: Iterable[str]) -> dict[str, str]:
        emails = list({e.strip().lower() for e in emails if e})
        out: dict[str, str] = {}
        for i in range(0, len(emails), 500):
            part = emails[i : i + 500]
            # A live contact wins over an archived (deleted or merged-away) one; then the lowest id.
            for email, cid in self.db.execute(
                f"SELECT email, id FROM contacts WHERE tenant=? AND source=? AND email IN ({marks(len(part))}) "
                "ORDER BY archived, id",
                (self.tenant, source, *part),
            ):
                out.setdefault(email, cid)
        return out

    def all_contact_ids(self, source: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT id FROM contacts WHERE tenant=? AND source=? ORDER BY id", (self.tenant, source))]

    def count_contacts(self, source: str | None = None) -> int:
        return self._count("contacts", source)

    def _count(self, table: str, source: str | None) -> int:
        """Rows of the tenant in `table`, of one source or of all."""
        q = f"SELECT count(*) FROM {table} WHERE tenant=?" + (" AND source=?" if source else "")
        return self.db.execute(q, (self.tenant, source) if source else (self.tenant,)).fetchone()[0]


    # ------------------------------------------------------------- engagement
    def upsert_engagements(self, engagements: Sequence[Engagement]) -> list[str]:
        """Store engagement; return contact ids that got something new or changed.

        A known id whose contact, kind or time changed counts too: one Salesforce email is one engagement
        keyed by its Task, which turns from "sent" into "opened" when the EmailMessage shows the open.
        Rows that did not change are not written again (an overlapping window re-reads many). The event's
        email is stored only for an engagement no contact id names (see below).
        """
        if not engagements:
            return []
        src = engagements[0].source
        ids = [e.id for e in engagements]
        known: dict[str, tuple[Any, ...]] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            known.update((r[0], r[1:]) for r in self.db.execute(
                f"SELECT id, contact_id, kind, at, detail, campaign, contact_email FROM engagements "
                f"WHERE tenant=? AND source=? AND id IN ({marks(len(part))})", (self.tenant, src, *part)))
        text_id = self._text_ids({t for e in engagements for t in (e.detail, e.campaign)})
        rows, moved = [], set()
        for e in engagements:
            # The address an event was matched by is kept only while it is the sole link to a contact: once the
            # contact id is known it says nothing the contact does not (a third of a row's bytes).
            row = (e.contact_id, e.kind.value, _ms(e.occurred_at), text_id[e.detail], text_id[e.campaign],
                   None if e.contact_id else e.contact_email)
            old = known.get(e.id)
            if old == row:
                continue
            rows.append((self.tenant, e.source, e.id, *row))
            if old is None or old[:3] != row[:3]:
                moved.add(e.contact_id)
        self.db.executemany(
            upsert_sql("engagements", ["tenant", "source", "id", "contact_id", "kind", "at", "detail", "campaign",
                                       "contact_email"], ["tenant", "source", "id"]), rows)
        touched = sorted(c for c in moved if c)
        self.mark_dirty(src, touched)
        return touched

    def _text_ids(self, texts: set[str]) -> dict[str, int]:
        """Numbers of detail and campaign texts, adding the new ones (each text is stored once)."""
        cache = self._texts_by_value
        missing = [t for t in texts if t not in cache]
        for attempt in range(2):
            for i in range(0, len(missing), 500):
                part = missing[i : i + 500]
                for tid, text in self.db.execute(
                        f"SELECT id, text FROM texts WHERE tenant=? AND text IN ({marks(len(part))})",
                        (self.tenant, *part)):
                    cache[text] = tid
                    self._texts_by_id[tid] = text
            missing = [t for t in missing if t not in cache]
            if not missing or attempt:
                break
            self.db.executemany(upsert_sql("texts", ["tenant", "text"], ["tenant", "text"], update=()),
                                [(self.tenant, t) for t in missing])
        return cache

    def _texts(self, ids: set[int]) -> dict[int, str]:
        cache = self._texts_by_id
        missing = [i for i in ids if i not in cache]
        for i in range(0, len(missing), 500):
            part = missing[i : i + 500]
            for tid, text in self.db.execute(
                    f"SELECT id, text FROM texts WHERE tenant=? AND id IN ({marks(len(part))})", (self.tenant, *part)):
                cache[tid] = text
                self._texts_by_value[text] = tid
        return cache

    def engagements_for(self, source: str, contact_ids: Sequence[str]) -> dict[str, list[Engagement]]:
        out: dict[str, list[Engagement]] = {cid: [] for cid in contact_ids}
        kinds = {k.value: k for k in EngagementKind}
        for i in range(0, len(contact_ids), 500):
            part = contact_ids[i : i + 500]
            rows = self.db.execute(
                "SELECT id, contact_id, kind, at, detail, campaign, contact_email FROM engagements "
                f"WHERE tenant=? AND source=? AND contact_id IN ({marks(len(part))}) ORDER BY at, id",
                (self.tenant, source, *part),
            ).fetchall()
            texts = self._texts({t for r in rows for t in (r[4], r[5])})
            for eid, cid, kind, at, detail, campaign, cemail in rows:
                out[cid].append(Engagement(source, eid, cid, kinds[kind], _from_ms(at), texts[detail],
                                           texts[campaign], cemail))
        return out

    def count_engagements(self, source: str | None = None) -> int:
        return self._count("engagements", source)

    # ------------------------------------------------------------- dirty set
    def mark_dirty(self, source: str, ids: Iterable[str]) -> None:
        self.db.executemany(upsert_sql("dirty", _DIRTY_KEY, _DIRTY_KEY), [(self.tenant, source, i) for i in ids])

    def dirty(self, source: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT contact_id FROM dirty WHERE tenant=? AND source=? ORDER BY contact_id", (self.tenant, source))]

    def dirty_among(self, source: str, ids: Sequence[str]) -> set[str]:
        """Which of these records are dirty."""
        out: set[str] = set()
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            out.update(r[0] for r in self.db.execute(
                f"SELECT contact_id FROM dirty WHERE tenant=? AND source=? AND contact_id IN ({marks(len(part))})",
                (self.tenant, source, *part)))
        return out

    def clear_dirty(self, source: str, ids: Iterable[str]) -> None:
        self.db.executemany("DELETE FROM dirty WHERE tenant=? AND source=? AND contact_id=?",
                            [(self.tenant, source, i) for i in ids])
