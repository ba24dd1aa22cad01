"""Routers; the app factory lists the ones it includes explicitly."""
