"""The storage layer: dataset manifests, input formats, ingest, chemistry index files, result files.

Nothing here runs a job; every layer above reads and writes datasets through these modules.
"""
