"""Settings from the environment; generated service configuration lives beside them."""
from config.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
