"""OneMap tests (a package, so `tests.*` is ours and not the `tests` package pygeoapi 0.21 installs)."""
