"""The demo warehouse: deterministic, well-formed, consistent, and shaped like real data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from corral.demo import DEMO_AS_OF, generate_into, generate_warehouse
from corral.demo.generate import EVENT_TYPES, TABLES

USERS = 3_000

KEYS = {
    "products": "product_id",
    "households": "household_id",
    "events": "event_id",
    "purchases": "order_id",
    "users": "user_id",
    "consents": "user_id, purpose",
}

SCHEMA = {
    "users": [
        ("user_id", "BIGINT"),
        ("email", "VARCHAR"),
        ("phone", "VARCHAR"),
        ("first_name", "VARCHAR"),
        ("last_name", "VARCHAR"),
        ("country", "VARCHAR"),
        ("state", "VARCHAR"),
        ("city", "VARCHAR"),
        ("zip", "VARCHAR"),
        ("birthday", "DATE"),
        ("signup_at", "TIMESTAMP"),
        ("plan", "VARCHAR"),
        ("lifetime_value", "DECIMAL(12,2)"),
        ("marketing_opt_in", "BOOLEAN"),
        ("household_id", "BIGINT"),
    ],
    "households": [
        ("household_id", "BIGINT"),
        ("size", "INTEGER"),
        ("income_band", "VARCHAR"),
        ("region", "VARCHAR"),
    ],
    "products": [
        ("product_id", "BIGINT"),
        ("name", "VARCHAR"),
        ("category", "VARCHAR"),
        ("brand", "VARCHAR"),
        ("price", "DECIMAL(10,2)"),
    ],
    "purchases": [
        ("order_id", "BIGINT"),
        ("user_id", "BIGINT"),
        ("product_id", "BIGINT"),
        ("amount", "DECIMAL(10,2)"),
        ("currency", "VARCHAR"),
        ("channel", "VARCHAR"),
        ("purchased_at", "TIMESTAMP"),
    ],
    "events": [
        ("event_id", "BIGINT"),
        ("user_id", "BIGINT"),
        ("event_type", "VARCHAR"),
        ("occurred_at", "TIMESTAMP"),
        ("product_id", "BIGINT"),
        ("category", "VARCHAR"),
        ("revenue", "DECIMAL(10,2)"),
        ("channel", "VARCHAR"),
    ],
    "consents": [
        ("user_id", "BIGINT"),
        ("purpose", "VARCHAR"),
        ("granted", "BOOLEAN"),
        ("updated_at", "TIMESTAMP"),
    ],
}


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    generate_into(connection, USERS, seed=7)
    yield connection
    connection.close()


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    return con.execute(sql).fetchall()[0][0]


def checksums(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """An md5 per table over every row, in stored order."""
    return {
        table: scalar(con, f"SELECT md5(string_agg(t::VARCHAR, '|' ORDER BY rowid)) FROM {table} t")
        for table in TABLES
    }


# -- determinism -------------------------------------------------------------------------


def test_same_users_and_seed_give_identical_tables(con: duckdb.DuckDBPyConnection) -> None:
    again = duckdb.connect()
    again.execute("SET threads = 1")
    generate_into(again, USERS, seed=7)

    assert checksums(again) == checksums(con)


def test_another_seed_gives_other_rows(con: duckdb.DuckDBPyConnection) -> None:
    other = duckdb.connect()
    generate_into(other, USERS, seed=8)

    first, second = checksums(con), checksums(other)
    assert all(first[table] != second[table] for table in TABLES)


def test_rows_are_stored_in_key_order(con: duckdb.DuckDBPyConnection) -> None:
    for table, key in KEYS.items():
        ordered = scalar(
            con,
            f"SELECT bool_and(rowid = position - 1) FROM "
            f"(SELECT rowid, row_number() OVER (ORDER BY {key}) AS position FROM {table})",
        )
        assert ordered, table


# -- shape -------------------------------------------------------------------------------


def test_tables_have_the_documented_columns_and_types(con: duckdb.DuckDBPyConnection) -> None:
    for table, columns in SCHEMA.items():
        described = con.execute(f"DESCRIBE {table}").fetchall()
        assert [(row[0], row[1]) for row in described] == columns, table


def test_stats_count_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "demo.duckdb"
    path.write_text("an old file to replace")

    stats = generate_warehouse(path, 500, seed=3)

    with duckdb.connect(str(path), read_only=True) as built:
        assert stats.tables == {t: scalar(built, f"SELECT count(*) FROM {t}") for t in TABLES}
    assert stats.tables["users"] == 500
    assert stats.seconds > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.duckdb"]


def test_progress_reports_each_table_then_done() -> None:
    calls: list[tuple[str, int, int]] = []

    generate_into(duckdb.connect(), 200, progress=lambda *call: calls.append(call))

    total = len(TABLES)
    expected = [(table, done, total) for done, table in enumerate(TABLES)]
    assert calls == [*expected, ("done", total, total)]


def test_no_users_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one user"):
        generate_into(duckdb.connect(), 0)


def test_sizes_follow_the_user_count(con: duckdb.DuckDBPyConnection) -> None:
    counts = {t: scalar(con, f"SELECT count(*) FROM {t}") for t in TABLES}

    assert counts["users"] == USERS
    assert counts["households"] == round(USERS * 0.4)
    assert 1_900 <= counts["products"] <= 2_200
    assert 6 * USERS <= counts["events"] <= 12 * USERS
    assert 1.2 * USERS <= counts["purchases"] <= 1.8 * USERS
    assert USERS <= counts["consents"] <= 3 * USERS


# -- keys and references -----------------------------------------------------------------


def test_keys_are_unique_and_not_null(con: duckdb.DuckDBPyConnection) -> None:
    for table, key in KEYS.items():
        duplicates = scalar(
            con,
            f"SELECT count(*) FROM (SELECT {key} FROM {table} GROUP BY ALL HAVING count(*) > 1)",
        )
        nulls = scalar(con, f"SELECT count(*) FROM {table} WHERE ({key}) IS NULL")
        assert (duplicates, nulls) == (0, 0), table


@pytest.mark.parametrize(
    ("child", "column", "parent", "key"),
    [
        ("purchases", "user_id", "users", "user_id"),
        ("purchases", "product_id", "products", "product_id"),
        ("events", "user_id", "users", "user_id"),
        ("events", "product_id", "products", "product_id"),
        ("users", "household_id", "households", "household_id"),
        ("consents", "user_id", "users", "user_id"),
    ],
)
def test_references_resolve(
    con: duckdb.DuckDBPyConnection, child: str, column: str, parent: str, key: str
) -> None:
    dangling = scalar(
        con,
        f"SELECT count(*) FROM {child} c WHERE c.{column} IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.{key} = c.{column})",
    )
    assert dangling == 0


def test_every_purchase_has_exactly_one_order_completed_event(
    con: duckdb.DuckDBPyConnection,
) -> None:
    unmatched = scalar(
        con,
        """
        SELECT count(*) FROM purchases p
        WHERE (SELECT count(*) FROM events e
               WHERE e.event_type = 'order_completed' AND e.user_id = p.user_id
                 AND e.product_id = p.product_id AND e.occurred_at = p.purchased_at
                 AND e.revenue = p.amount AND e.channel = p.channel) <> 1
        """,
    )
    assert unmatched == 0


def test_every_order_completed_event_has_a_purchase(con: duckdb.DuckDBPyConnection) -> None:
    orphans = scalar(
        con,
        """
        SELECT count(*) FROM events e
        WHERE e.event_type = 'order_completed' AND NOT EXISTS (
            SELECT 1 FROM purchases p
            WHERE e.user_id = p.user_id AND e.product_id = p.product_id
              AND e.occurred_at = p.purchased_at AND e.revenue = p.amount
              AND e.channel = p.channel)
        """,
    )
    orders = scalar(con, "SELECT count(*) FROM events WHERE event_type = 'order_completed'")

    assert orphans == 0
    assert orders == scalar(con, "SELECT count(*) FROM purchases")


def test_lifetime_value_is_the_sum_of_purchases(con: duckdb.DuckDBPyConnection) -> None:
    wrong = scalar(
        con,
        """
        SELECT count(*) FROM users u
        LEFT JOIN (SELECT user_id, sum(amount) AS spent FROM purchases GROUP BY 1) s
            USING (user_id)
        WHERE u.lifetime_value <> coalesce(s.spent, 0)
        """,
    )
    assert wrong == 0


def test_amounts_are_the_price_times_a_small_quantity_less_a_discount(
    con: duckdb.DuckDBPyConnection,
) -> None:
    ratios = con.execute(
        "SELECT min(amount / price), max(amount / price) FROM purchases JOIN products "
        "USING (product_id)"
    ).fetchall()[0]
    assert ratios[0] >= 0.69
    assert ratios[1] <= 3.001


# -- time --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("users", "signup_at"),
        ("events", "occurred_at"),
        ("purchases", "purchased_at"),
        ("consents", "updated_at"),
    ],
)
def test_history_ends_before_the_as_of_date(
    con: duckdb.DuckDBPyConnection, table: str, column: str
) -> None:
    earliest, latest = con.execute(f"SELECT min({column}), max({column}) FROM {table}").fetchall()[
        0
    ]
    assert earliest >= DEMO_AS_OF.replace(year=DEMO_AS_OF.year - 2)
    assert latest < DEMO_AS_OF


def test_nothing_happens_before_signup(con: duckdb.DuckDBPyConnection) -> None:
    early_events = scalar(
        con,
        "SELECT count(*) FROM events e JOIN users u USING (user_id) "
        "WHERE e.occurred_at < u.signup_at",
    )
    early_consents = scalar(
        con,
        "SELECT count(*) FROM consents c JOIN users u USING (user_id) "
        "WHERE c.updated_at < u.signup_at",
    )
    assert (early_events, early_consents) == (0, 0)


def test_each_user_signs_up_once_at_signup_time(con: duckdb.DuckDBPyConnection) -> None:
    matching = scalar(
        con,
        "SELECT count(*) FROM events e JOIN users u USING (user_id) "
        "WHERE e.event_type = 'signed_up' AND e.occurred_at = u.signup_at",
    )
    signups = scalar(con, "SELECT count(*) FROM events WHERE event_type = 'signed_up'")
    assert matching == signups == USERS


def test_event_ids_follow_time(con: duckdb.DuckDBPyConnection) -> None:
    backwards = scalar(
        con,
        "SELECT count(*) FROM (SELECT occurred_at, lag(occurred_at) OVER (ORDER BY event_id) "
        "AS previous FROM events) WHERE previous > occurred_at",
    )
    assert backwards == 0


def test_recent_activity_is_denser_and_some_users_lapsed(con: duckdb.DuckDBPyConnection) -> None:
    last_30_days = scalar(
        con,
        "SELECT count(DISTINCT user_id) FROM events "
        "WHERE occurred_at >= TIMESTAMP '2026-12-01' - INTERVAL 30 DAY",
    )
    first_30_days = scalar(
        con,
        "SELECT count(DISTINCT user_id) FROM events "
        "WHERE occurred_at < TIMESTAMP '2024-12-01' + INTERVAL 30 DAY",
    )
    lapsed = scalar(
        con,
        """
        SELECT count(*) FROM (
            SELECT user_id FROM events WHERE event_type <> 'signed_up' GROUP BY 1
            HAVING count(*) >= 5
               AND max(occurred_at) < TIMESTAMP '2026-12-01' - INTERVAL 90 DAY)
        """,
    )
    assert last_30_days >= 0.2 * USERS
    assert last_30_days > 5 * first_30_days
    assert lapsed >= 0.03 * USERS


# -- shape of activity -------------------------------------------------------------------


def test_activity_is_skewed(con: duckdb.DuckDBPyConnection) -> None:
    median, most = con.execute(
        "SELECT median(n), max(n) FROM (SELECT count(*) AS n FROM events GROUP BY user_id)"
    ).fetchall()[0]
    most_orders = scalar(
        con, "SELECT max(n) FROM (SELECT count(*) AS n FROM purchases GROUP BY user_id)"
    )
    assert most >= 20 * median
    assert most >= 100
    assert most_orders >= 24


def test_many_users_never_buy_and_some_do_nothing(con: duckdb.DuckDBPyConnection) -> None:
    never_bought = scalar(
        con,
        "SELECT avg((NOT EXISTS (SELECT 1 FROM purchases p WHERE p.user_id = u.user_id))::INT) "
        "FROM users u",
    )
    only_signed_up = scalar(
        con,
        "SELECT avg((n = 1)::INT) FROM (SELECT count(*) AS n FROM events GROUP BY user_id)",
    )
    assert 0.2 <= never_bought <= 0.3
    assert 0.05 <= only_signed_up <= 0.3


def test_every_event_type_occurs(con: duckdb.DuckDBPyConnection) -> None:
    seen = {row[0] for row in con.execute("SELECT DISTINCT event_type FROM events").fetchall()}
    assert seen == set(EVENT_TYPES)


@pytest.mark.parametrize(
    ("table", "column", "allowed"),
    [
        ("users", "plan", {"free", "plus", "pro"}),
        ("purchases", "channel", {"web", "app", "store"}),
        ("events", "channel", {"web", "app", "store", "email"}),
        ("consents", "purpose", {"email", "ads", "sms"}),
    ],
)
def test_enumerations_hold_their_values(
    con: duckdb.DuckDBPyConnection, table: str, column: str, allowed: set[str]
) -> None:
    seen = {row[0] for row in con.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall()}
    assert seen == allowed


def test_plans_are_mostly_free(con: duckdb.DuckDBPyConnection) -> None:
    shares = dict(
        con.execute(
            "SELECT plan, count(*) / sum(count(*)) OVER () FROM users GROUP BY 1"
        ).fetchall()
    )
    assert shares["free"] > shares["plus"] > shares["pro"] >= 0.03


def test_funnel_sequences_and_abandoned_carts_exist(con: duckdb.DuckDBPyConnection) -> None:
    abandoned = scalar(
        con,
        """
        SELECT count(DISTINCT v.user_id)
        FROM events v
        JOIN events a ON a.user_id = v.user_id AND a.event_type = 'added_to_cart'
            AND a.occurred_at > v.occurred_at
            AND a.occurred_at <= v.occurred_at + INTERVAL 1 HOUR
        WHERE v.event_type = 'product_viewed' AND NOT EXISTS (
            SELECT 1 FROM events c
            WHERE c.user_id = a.user_id AND c.event_type = 'checkout_started'
              AND c.occurred_at > a.occurred_at
              AND c.occurred_at <= a.occurred_at + INTERVAL 1 DAY)
        """,
    )
    completed = scalar(
        con,
        """
        SELECT count(*) FROM events o
        WHERE o.event_type = 'order_completed' AND EXISTS (
            SELECT 1 FROM events v
            WHERE v.user_id = o.user_id AND v.event_type = 'product_viewed'
              AND v.product_id = o.product_id AND v.occurred_at < o.occurred_at
              AND v.occurred_at >= o.occurred_at - INTERVAL 12 HOUR)
        """,
    )
    orders = scalar(con, "SELECT count(*) FROM purchases")
    assert abandoned >= 0.05 * USERS
    assert completed >= 0.5 * orders


def test_only_product_events_name_a_product(con: duckdb.DuckDBPyConnection) -> None:
    wrong = scalar(
        con,
        """
        SELECT count(*) FROM events
        WHERE (event_type IN ('product_viewed', 'added_to_cart', 'checkout_started',
                              'order_completed'))
              <> (product_id IS NOT NULL AND category IS NOT NULL)
           OR (event_type = 'order_completed') <> (revenue IS NOT NULL)
        """,
    )
    assert wrong == 0


# -- profiles ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "low", "high"),
    [
        ("phone", 0.30, 0.40),
        ("household_id", 0.35, 0.45),
        ("birthday", 0.07, 0.13),
        ("city", 0.005, 0.05),
        ("zip", 0.01, 0.06),
    ],
)
def test_null_shares_look_real(
    con: duckdb.DuckDBPyConnection, column: str, low: float, high: float
) -> None:
    share = scalar(con, f"SELECT avg(({column} IS NULL)::INT) FROM users")
    assert low <= share <= high


def test_only_us_and_canada_have_states(con: duckdb.DuckDBPyConnection) -> None:
    wrong = scalar(
        con, "SELECT count(*) FROM users WHERE (country IN ('US', 'CA')) <> (state IS NOT NULL)"
    )
    countries = dict(
        con.execute(
            "SELECT country, count(*) / sum(count(*)) OVER () FROM users GROUP BY 1"
        ).fetchall()
    )
    assert wrong == 0
    assert countries["US"] == max(countries.values())
    assert len(countries) >= 8


def test_emails_are_messy_but_plausible(con: duckdb.DuckDBPyConnection) -> None:
    padded, shouted, malformed, foreign, duplicated = con.execute(
        r"""
        SELECT
            avg((email <> trim(email))::INT),
            avg((email <> lower(email))::INT),
            count(*) FILTER (WHERE NOT regexp_full_match(
                lower(trim(email)), '[a-z][a-z0-9._]*@[a-z.]+')),
            count(*) FILTER (WHERE NOT regexp_full_match(
                lower(trim(email)), '.*@([a-z]+\.)?example(\.(com|org|net))?')),
            count(*) - count(DISTINCT lower(trim(email)))
        FROM users
        """
    ).fetchall()[0]
    assert 0.03 <= padded <= 0.07
    assert 0.05 <= shouted <= 0.25
    assert (malformed, foreign) == (0, 0)
    assert 1 <= duplicated <= 0.02 * USERS


def test_phones_are_fictional_in_many_formats(con: duckdb.DuckDBPyConnection) -> None:
    not_555, formats = con.execute(
        r"""
        SELECT
            count(*) FILTER (WHERE phone NOT LIKE '%555%'),
            count(DISTINCT regexp_replace(phone, '\d', '9', 'g'))
        FROM users WHERE phone IS NOT NULL
        """
    ).fetchall()[0]
    assert not_555 == 0
    assert formats >= 10


def test_birthdays_cover_the_year_and_adult_ages(con: duckdb.DuckDBPyConnection) -> None:
    youngest, oldest, months, around_as_of = con.execute(
        """
        SELECT
            min(date_diff('year', birthday, DATE '2026-12-01')),
            max(date_diff('year', birthday, DATE '2026-12-01')),
            count(DISTINCT month(birthday)),
            count(*) FILTER (WHERE month(birthday) = 12 AND day(birthday) <= 7)
        FROM users
        """
    ).fetchall()[0]
    assert youngest >= 18 and oldest <= 81
    assert months == 12
    assert around_as_of >= 10


def test_household_members_share_an_address(con: duckdb.DuckDBPyConnection) -> None:
    split, undersized = con.execute(
        """
        SELECT
            (SELECT count(*) FROM (SELECT household_id FROM users WHERE household_id IS NOT NULL
                                   GROUP BY 1 HAVING count(DISTINCT country) > 1)),
            (SELECT count(*) FROM households h
             WHERE h.size < (SELECT count(*) FROM users u WHERE u.household_id = h.household_id))
        """
    ).fetchall()[0]
    assert (split, undersized) == (0, 0)


def test_consents_cover_every_user_with_one_to_three_purposes(
    con: duckdb.DuckDBPyConnection,
) -> None:
    fewest, most, users_with_rows, sms_without_phone = con.execute(
        """
        SELECT min(n), max(n), count(*),
            (SELECT count(*) FROM consents JOIN users USING (user_id)
             WHERE purpose = 'sms' AND phone IS NULL)
        FROM (SELECT user_id, count(*) AS n FROM consents GROUP BY 1)
        """
    ).fetchall()[0]
    assert (fewest, most, users_with_rows, sms_without_phone) == (1, 3, USERS, 0)


def test_email_consent_mirrors_marketing_opt_in(con: duckdb.DuckDBPyConnection) -> None:
    wrong = scalar(
        con,
        "SELECT count(*) FROM consents c JOIN users u USING (user_id) "
        "WHERE c.purpose = 'email' AND c.granted <> u.marketing_opt_in",
    )
    assert wrong == 0
