"""EmailMessage rows derived from the seeded email Tasks, after seeding, without touching any seeded row.

Reference §3: an email logged to a Lead/Contact is an `EmailMessage` whose `ActivityId` names the Task
(`TaskSubtype = 'Email'`) that also represents it, so a connector must not count that email twice. Which
Tasks get a message, and what kind, is a pure function of the Task id (a hash), so a seed always yields
the same messages and the rows the seed loader made (and their ids) stay exactly as they were.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sandbox.salesforce.store import Row, Store


def _hash(task_id: str) -> int:
    return int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:8], "big")


def derive_email_messages(store: Store, anchor: datetime) -> int:
    """Add an EmailMessage for about two thirds of the email Tasks (in Task id order); returns how many.

    Half of them are the prospect's reply (`Incoming`, status Read "1"), half the owner's tracked answer
    (status Sent "3"), two thirds of which the prospect opened (`FirstOpenedDate`/`LastOpenedDate`, which
    move `SystemModstamp` as an open does). Every message links its Task by `ActivityId`.
    """
    tasks = store.tables["Task"].rows
    added = 0
    for task_id in sorted(tasks):
        task = tasks[task_id]
        h = _hash(task_id)
        if task.get("TaskSubtype") != "Email" or h % 3 == 0 or not task.get("WhoId"):
            continue
        store.load("EmailMessage", _message(store, task, h, anchor))
        added += 1
    return added


def _message(store: Store, task: Row, h: int, anchor: datetime) -> Row:
    who = store.get(task["WhoId"]) or {}
    owner = store.get(task.get("OwnerId") or "") or {}
    sent: datetime = task.get("CompletedDateTime") or task["CreatedDate"]
    incoming = (h // 3) % 2 == 0
    prospect, rep = who.get("Email"), owner.get("Email")
    first = last = None
    if not incoming and (h // 6) % 3 != 0:
        first = sent + timedelta(minutes=5 + (h >> 8) % 600)
        last = first + timedelta(hours=(h >> 20) % 72)
        if first > anchor:
            first = last = None
        elif last > anchor:
            last = first
    subject = str(task.get("Subject") or "")
    table = store.tables["EmailMessage"]
    return {
        **dict.fromkeys(table.sobject.fields),
        "Id": table.next_id(), "IsDeleted": False, "CreatedDate": sent, "LastModifiedDate": sent,
        "SystemModstamp": last or sent, "ActivityId": task["Id"],
        "RelatedToId": who.get("AccountId") if who.get("AccountId") else task.get("WhatId"),
        "FromAddress": prospect if incoming else rep, "ToAddress": rep if incoming else prospect,
        "Subject": subject.removeprefix("Email: "), "MessageDate": sent, "Incoming": incoming,
        "Status": "1" if incoming else "3", "IsTracked": not incoming, "FirstOpenedDate": first,
        "LastOpenedDate": last, "IsBounced": False,
    }
