"""The one import engine for the counties' submissions (CLI and web upload alike).

`import_file(conn, layer, path, county=, crs=, dry_run=)` reads a Shapefile (zipped or
loose, GBK/GB18030/UTF-8), GeoPackage, GeoJSON, CSV (WKT or x/y) or corner list (拐点),
maps its columns onto the registry (`mapping`), settles the CRS (`crs`), stages it with COPY
and validates it in SQL (`stage`), and inserts it in one statement as a recorded batch that
`rollback_batch` can undo. Any error raises an `ImportFailed` and writes nothing.
"""
from etl.importer.batches import list_batches, rollback_batch
from etl.importer.engine import ImportResult, import_file
from etl.importer.errors import (BatchRejected, CrsProblem, ImportFailed, ReadFailed, UnknownBatch, UnsafeInput,
                                 format_entry)
from etl.importer.safety import Limits

__all__ = ["BatchRejected", "CrsProblem", "ImportFailed", "ImportResult", "Limits", "ReadFailed", "UnknownBatch",
           "UnsafeInput", "format_entry", "import_file", "list_batches", "rollback_batch"]
