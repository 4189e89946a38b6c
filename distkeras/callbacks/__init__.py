"""distkeras.callbacks (filled in by its own work item)."""
