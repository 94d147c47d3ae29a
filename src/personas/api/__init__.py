"""The HTTP service: ``create_app(ServeSettings(model_dir=...))``; run it with ``personas serve``."""

from personas.api.app import create_app
from personas.api.service import PersonaService
from personas.api.settings import ServeSettings
from personas.api.storage import Storage

__all__ = ["PersonaService", "ServeSettings", "Storage", "create_app"]
