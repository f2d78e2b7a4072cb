"""The layer registry and the database models derived from it."""
from layers.catalog import REGISTRY
from layers.registry import Field, FieldType, Geometry, Layer, Registry, STORAGE_SRID, UnknownLayer

__all__ = ["REGISTRY", "Field", "FieldType", "Geometry", "Layer", "Registry", "STORAGE_SRID", "UnknownLayer"]
