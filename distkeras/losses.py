"""Loss functions and classes, mirroring keras.losses."""
