"""Artefact folders: named numpy arrays + a JSON document, checksummed, written atomically, never pickled."""

from personas.store.artefact import MANIFEST, load, save

__all__ = ["MANIFEST", "load", "save"]
