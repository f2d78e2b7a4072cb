"""Tile services: vector tiles (MVT) from PostGIS with a disk cache invalidated by changed area,
and imagery tile pyramids with the MapProxy configuration generated from the imagery epochs."""
