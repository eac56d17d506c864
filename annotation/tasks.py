"""Background tasks of the annotation app: none yet (a mask save is a fast, synchronous write)."""
