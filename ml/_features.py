"""The model's view of the feature mart: which columns go in, and how they are cast."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

__all__ = [
    "IS",
    "KEY_COLUMNS",
    "LABEL",
    "MAX_CATEGORY_VALUES",
    "Marts",
    "feature_columns",
    "model_input",
    "source_column",
]

KEY_COLUMNS = ("customer_cutoff_id", "customer_id", "cutoff_date")
# Columns of the feature mart that describe a row but are not inputs.
NOT_FEATURES = frozenset({"batch_id"})
MAX_CATEGORY_VALUES = 30
IS = "="
LABEL = "is_churned_in_horizon"


@dataclass(frozen=True)
class Marts:
    """The dbt tables the model reads, in one schema (``analytics`` by default)."""

    schema: str = "analytics"

    @property
    def features(self) -> str:
        return f"{self.schema}.customer_features"

    @property
    def labels(self) -> str:
        return f"{self.schema}.churn_labels"

    @property
    def cutoffs(self) -> str:
        return f"{self.schema}.int_cutoffs"

    def horizon_days(self, spark: SparkSession) -> int:
        row = (
            spark.table(self.cutoffs)
            .select(F.datediff("horizon_end_date", "cutoff_date").alias("days"))
            .first()
        )
        if row is None:
            raise ValueError(
                f"{self.cutoffs} is empty; run `sparkify run` on some logs first"
            )
        return int(row.days)


def feature_columns(features: DataFrame) -> list[str]:
    """The model's inputs: every numeric or boolean column of the feature mart
    except its keys, and one ``column=value`` indicator per value of each text
    column (device, OS, browser, state), the most frequent
    ``MAX_CATEGORY_VALUES`` of them.
    """
    names: list[str] = []
    for column in features.schema.fields:
        if column.name in KEY_COLUMNS or column.name in NOT_FEATURES:
            continue
        if isinstance(column.dataType, T.StringType):
            counts = features.groupBy(column.name).count()
            top = counts.orderBy(F.desc("count"), column.name).limit(
                MAX_CATEGORY_VALUES
            )
            values = sorted(row[0] for row in top.collect() if row[0] is not None)
            names += [f"{column.name}{IS}{value}" for value in values]
        else:
            names.append(column.name)
    return names


def source_column(name: str) -> str:
    """The mart column behind an input: ``device_type=phone`` -> ``device_type``."""
    return name.partition(IS)[0]


def model_input(frame: DataFrame, names: list[str]) -> DataFrame:
    """The feature mart rows cast the way the model sees them, with ``label``.

    A ``column=value`` name is 1.0 where the text column holds that value.
    """
    columns = []
    for name in names:
        source, _, value = name.partition(IS)
        if value:
            indicator = (F.col(source) == F.lit(value)).cast("double")
            columns.append(F.coalesce(indicator, F.lit(0.0)).alias(name))
        else:
            columns.append(F.col(name).cast("double").alias(name))
    if LABEL in frame.columns:
        columns.append(F.col(LABEL).cast("int").alias("label"))
    return frame.select(*KEY_COLUMNS, *columns)
