"""Headless core: no Qt, no napari. Safe to import on a server."""
