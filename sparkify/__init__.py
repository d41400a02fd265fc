"""Sparkify churn: ingestion, dbt on Spark, quality gates, serving and the CLI.

The steps live in their own modules (``ingest``, ``transform``, ``quality``,
``serving``, ``generate``, ``pipeline``); ``sparkify.cli`` is the command.
"""

__all__: list[str] = []
