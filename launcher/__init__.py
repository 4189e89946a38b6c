"""The `distkeras-launch` command: starts and supervises distkeras workers.

See `launcher.cli` for the manual. This package imports neither torch nor distkeras so that
the command starts in well under a second; keep this file free of imports.
"""
