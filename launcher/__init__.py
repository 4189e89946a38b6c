"""The `distkeras-launch` command: starts and supervises distkeras workers.

Installed as the package `distkeras_launcher` (a top-level `launcher` would collide with other
projects); the source folder is `launcher/`. See `distkeras_launcher.cli` for the manual. This
package imports neither torch nor distkeras so that the command starts in well under a second;
keep this file free of imports.
"""
