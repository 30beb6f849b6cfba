"""Flower's configuration file (`--conf`, by default `flowerconfig.py` in the directory Flower
starts in: the project's root, where the Procfile, compose and the tests start it).

Flower runs it before it serves anything; config/flower.py says what it does: credentials on
every route, and no start with the demo's credentials (or none) outside debug. Any name defined
here that is also one of Flower's options would set that option: keep this file to one call.
"""

from config.flower import configure

configure()
