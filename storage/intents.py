"""Side effects that must happen once (a greeting, a thank-you), whatever the redeliveries and races.

The key is inserted before the effect. The delivery that inserted it owns it and may finish it on a
retry (after a crash it checks its marker first); any other delivery sees the key and stands back.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from storage import db
from storage.db import intents, utcnow
from storage.prepared import Prepared

NEW, RESUMED, TAKEN = "new", "resumed", "taken"
# Built once: every greeting, thank-you and reply goes through start and done.
_START = Prepared(intents.insert())
_DONE = Prepared(intents.update().where(intents.c.key == sa.bindparam("b_key")))


class IntentStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def claim(self, key: str, delivery_id: str) -> bool:
        """True if this delivery should carry out `key` (it is new, or ours and not finished)."""
        return self.start(key, delivery_id) != TAKEN

    def start(self, key: str, delivery_id: str) -> str:
        """NEW: this delivery just took `key`, so nobody has acted on it; RESUMED: it is ours from an
        earlier try that did not finish (the effect may have happened: check before acting again);
        TAKEN: another delivery's, or done."""
        try:
            with db.one_statement(self.engine) as conn:
                _START.execute(conn, {"key": key, "delivery_id": delivery_id, "created_at": utcnow()})
            return NEW
        except IntegrityError:
            with db.connect(self.engine) as conn:
                row = conn.execute(sa.select(intents).where(intents.c.key == key)).one()
            return RESUMED if row.delivery_id == delivery_id and row.done_at is None else TAKEN

    def done(self, key: str, result: str = "") -> None:
        with db.one_statement(self.engine) as conn:
            _DONE.execute(conn, {"b_key": key, "done_at": utcnow(), "result": result})
