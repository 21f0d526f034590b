"""Batch adjudication: JSON lines in, one record per line out, on one core, many, or a Dask cluster."""
