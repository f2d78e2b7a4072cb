"""Import batches after the fact: listing and rolling back (撤销导入)."""
from __future__ import annotations

import getpass

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from etl.importer.errors import ImportFailed, UnknownBatch
from layers import REGISTRY


def rollback_batch(conn: Connection, batch_id: int, user: str | None = None) -> int:
    """Delete the rows batch `batch_id` inserted; returns how many. The batch stays recorded
    as rolled back (who, when), so the same file may be imported again."""
    batch = conn.execute(text("SELECT layer, status FROM import_batch WHERE id = :id FOR UPDATE"),
                         dict(id=batch_id)).first()
    if batch is None:
        raise UnknownBatch(f"batch {batch_id}: no such import batch")
    if batch.status != "committed":
        raise ImportFailed(f"batch {batch_id}: already {batch.status.replace('_', ' ')}")
    table = REGISTRY[batch.layer].table
    savepoint = conn.begin_nested()
    try:
        # one primary-key range scan per range of the batch's ids
        deleted = conn.execute(text(f"DELETE FROM {table} t USING import_batch b, unnest(b.row_ids) r "
                                    "WHERE b.id = :id AND t.id >= lower(r) AND t.id < upper(r)"),
                               dict(id=batch_id)).rowcount
    except IntegrityError as exc:
        savepoint.rollback()
        raise ImportFailed(f"batch {batch_id}: its {batch.layer} rows are referenced by other records "
                           f"({exc.orig.diag.message_detail or exc.orig}); roll those back first") from None
    savepoint.commit()
    conn.execute(text("UPDATE import_batch SET status = 'rolled_back', rolled_back_at = now(), "
                      "rolled_back_by = :user WHERE id = :id"), dict(id=batch_id, user=user or getpass.getuser()))
    return deleted


def list_batches(conn: Connection, layer: str | None = None, limit: int = 50) -> list[dict]:
    rows = conn.execute(text("""
        SELECT id, layer, file_name, file_sha256, county_code, source_crs, imported_by, imported_at, status,
               rows_read, rows_inserted, rolled_back_at, rolled_back_by
        FROM import_batch WHERE (CAST(:layer AS text) IS NULL OR layer = :layer)
        ORDER BY id DESC LIMIT :limit"""), dict(layer=layer, limit=limit)).mappings().all()
    return [dict(r) for r in rows]
