"""The model registry: immutable versions, the production pointer and its history (``versions``),
on any object store behind one interface (``store``: local directory or S3); ``gc`` removes what
interrupted runs left (incomplete versions, orphaned temporary objects), never a version in use."""
