"""Spark runs the warehouse conformance suite on one local session for the whole run."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from sqlglot import exp

from corral.errors import WarehouseError
from tests.conftest import TEST_SCHEMA
from tests.warehouse.conformance import WarehouseConformance

pytestmark = pytest.mark.spark


class TestSparkConformance(WarehouseConformance):
    # Data loaded from Arrow lands in Spark's TIMESTAMP (an instant): naive values read as UTC.
    naive_timestamps_round_trip: ClassVar[bool] = False

    @pytest.fixture
    def warehouse(self, spark_warehouse: Any) -> Any:
        return spark_warehouse

    @pytest.fixture
    def schema(self) -> str | None:
        return TEST_SCHEMA


def test_sessions_run_in_utc_with_ansi_mode(spark_warehouse: Any) -> None:
    conf = spark_warehouse.session.conf

    assert conf.get("spark.sql.session.timeZone") == "UTC"
    assert conf.get("spark.sql.ansi.enabled") == "true"


def test_ansi_mode_turns_a_bad_cast_into_an_error(spark_warehouse: Any) -> None:
    statement = exp.select(exp.cast(exp.Literal.string("not a number"), "INT").as_("n"))

    with pytest.raises(WarehouseError, match="CAST"):
        spark_warehouse.query(statement)


def test_errors_carry_no_query_plan_or_jvm_stack(spark_warehouse: Any) -> None:
    with pytest.raises(WarehouseError) as caught:
        spark_warehouse.query(exp.select("*").from_("no_such_table"))

    assert "TABLE_OR_VIEW_NOT_FOUND" in caught.value.message
    assert "UnresolvedRelation" not in caught.value.message
    assert "\tat " not in caught.value.message


def test_a_warehouse_without_a_session_borrows_the_active_one(spark_warehouse: Any) -> None:
    from corral.warehouse.spark import SparkWarehouse

    borrowed = SparkWarehouse()
    borrowed.close()

    assert borrowed.session is spark_warehouse.session
    assert spark_warehouse.query(exp.select(exp.Literal.number(1).as_("x"))).num_rows == 1
