"""Data in and out: importers, validation, CRS handling, exporters, the demo province."""
