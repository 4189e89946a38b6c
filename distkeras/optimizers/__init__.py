"""distkeras.optimizers (filled in by its own work item)."""
