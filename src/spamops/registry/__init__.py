"""The model registry: immutable versions, the production pointer and its history (``versions``),
on any object store behind one interface (``store``: local directory or S3)."""
