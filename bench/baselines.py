"""Hand-written DuckDB queries answering the same questions as the demo audiences.

Each is what a strong analyst would write by hand for the semantics in docs/semantics.md;
`audiences.py` checks that each selects exactly the compiled audience's members before it
times them. They are SQL text on purpose: they are the baselines the compiler is
measured against.
"""

from __future__ import annotations

from datetime import datetime

# The date literals in the baselines are computed from this as-of time.
BASELINE_AS_OF = datetime(2026, 12, 1)

# -- the hand-written baselines ---------------------------------------------------------------
#
# Keyed by audience file stem. Windows from the as-of time 2026-12-01 00:00:
# last 30 days (2026-11-01, 2026-12-01]; last 90 days (2026-09-02, ...]; last 180 days
# (2026-06-04, ...]; last 365 days (2025-12-01, ...]; more than 180 days ago < 2026-06-04;
# last month [2026-11-01, 2026-12-01); birthdays in the next 7 days: 1 to 8 December.
# Booleans are compared with `= true`: DuckDB 2.0 filters a bare boolean column in a scan
# 1.3 times slower (measured on the 10M users table). On events the time filter comes
# first: DuckDB kept the written order of scan filters in these plans, and comparing
# times is cheaper than comparing types and skips row groups.

BASELINES: dict[str, str] = {
    # relation with a nested `where`, many-to-one
    "big_households": """
SELECT u.user_id
FROM users AS u
WHERE u.household_id IN (
    SELECT household_id
    FROM households
    WHERE size >= 4 AND lower(income_band) IN ('100k-150k', '150k+')
)
""",
    # event aggregate (sum) with a `where` and a window
    "big_web_spenders": """
SELECT u.user_id
FROM users AS u
WHERE u.user_id IN (
    SELECT user_id
    FROM events
    WHERE occurred_at > TIMESTAMP '2026-06-04 00:00:00'
        AND occurred_at <= TIMESTAMP '2026-12-01 00:00:00'
        AND event_type = 'order_completed'
        AND lower(channel) = 'web'
    GROUP BY user_id
    HAVING sum(revenue) >= 300
)
""",
    # date anniversary, boolean, is_not_null, ends_with. The cheap filters first and
    # lower(email) last: written as ends_with(lower(email), ...) DuckDB pushes it into the
    # scan and lowers every opted-in address, twice as slow.
    "birthdays_this_week": """
SELECT user_id
FROM users
WHERE month(birthday) * 100 + day(birthday) BETWEEN 1201 AND 1208
    AND marketing_opt_in = true
    AND right(lower(email), 4) = '.com'
""",
    # sequence: viewed, added to cart within an hour, no checkout within a day. Every step
    # is after the first, so each scan of events gets the window's lower bound. (A version
    # with window functions over the month's events was 1.5 times slower.)
    "cart_abandoners": """
SELECT u.user_id
FROM users AS u
WHERE u.user_id IN (
    SELECT viewed.user_id
    FROM events AS viewed
    JOIN events AS carted
        ON carted.user_id = viewed.user_id
        AND carted.occurred_at > viewed.occurred_at
        AND carted.occurred_at <= viewed.occurred_at + INTERVAL 1 HOUR
    WHERE viewed.occurred_at > TIMESTAMP '2026-11-01 00:00:00'
        AND viewed.occurred_at <= TIMESTAMP '2026-12-01 00:00:00'
        AND viewed.event_type = 'product_viewed'
        AND carted.occurred_at > TIMESTAMP '2026-11-01 00:00:00'
        AND carted.occurred_at <= TIMESTAMP '2026-12-01 00:00:00'
        AND carted.event_type = 'added_to_cart'
        AND NOT EXISTS (
            SELECT 1
            FROM events AS checkout
            WHERE checkout.user_id = carted.user_id
                AND checkout.occurred_at > carted.occurred_at
                AND checkout.occurred_at <= carted.occurred_at + INTERVAL 1 DAY
                AND checkout.occurred_at > TIMESTAMP '2026-11-01 00:00:00'
                AND checkout.occurred_at <= TIMESTAMP '2026-12-01 00:00:00'
                AND checkout.event_type = 'checkout_started'
        )
)
""",
    # event count with a window, and an event in a calendar period
    "engaged_app_users": """
SELECT u.user_id
FROM users AS u
WHERE u.user_id IN (
        SELECT user_id
        FROM events
        WHERE occurred_at > TIMESTAMP '2026-11-01 00:00:00'
            AND occurred_at <= TIMESTAMP '2026-12-01 00:00:00'
            AND event_type = 'app_opened'
        GROUP BY user_id
        HAVING count(*) >= 5
    )
    AND u.user_id IN (
        SELECT user_id
        FROM events
        WHERE occurred_at >= TIMESTAMP '2026-11-01 00:00:00'
            AND occurred_at < TIMESTAMP '2026-12-01 00:00:00'
            AND event_type = 'email_opened'
    )
""",
    # string in, relation aggregate (sum) with a window, event not performed in a window
    "lapsed_high_spenders": """
SELECT u.user_id
FROM users AS u
WHERE lower(u.country) IN ('us', 'ca')
    AND u.user_id IN (
        SELECT user_id
        FROM purchases
        WHERE purchased_at > TIMESTAMP '2025-12-01 00:00:00'
            AND purchased_at <= TIMESTAMP '2026-12-01 00:00:00'
        GROUP BY user_id
        HAVING sum(amount) >= 500
    )
    AND NOT EXISTS (
        SELECT 1
        FROM events AS e
        WHERE e.user_id = u.user_id
            AND e.occurred_at > TIMESTAMP '2026-09-02 00:00:00'
            AND e.occurred_at <= TIMESTAMP '2026-12-01 00:00:00'
            AND e.event_type = 'order_completed'
    )
""",
    # timestamp within_last, event never performed, a negated condition
    "new_signups_without_order": """
SELECT u.user_id
FROM users AS u
WHERE u.signup_at > TIMESTAMP '2026-11-01 00:00:00'
    AND u.signup_at <= TIMESTAMP '2026-12-01 00:00:00'
    AND NOT EXISTS (
        SELECT 1
        FROM events AS e
        WHERE e.user_id = u.user_id
            AND e.occurred_at <= TIMESTAMP '2026-12-01 00:00:00'
            AND e.event_type = 'order_completed'
    )
    AND (u.plan IS NULL OR lower(u.plan) <> 'pro')
""",
    # string in, not_equals (a null plan is not 'free'), boolean
    "north_american_subscribers": """
SELECT user_id
FROM users
WHERE marketing_opt_in = true
    AND lower(country) IN ('us', 'ca')
    AND (plan IS NULL OR lower(plan) <> 'free')
""",
    # count over a through relation (purchases to products) with a `where`
    "repeat_category_buyers": """
SELECT u.user_id
FROM users AS u
WHERE u.user_id IN (
    SELECT o.user_id
    FROM purchases AS o
    JOIN products AS pr ON pr.product_id = o.product_id
    WHERE lower(pr.category) = 'electronics'
    GROUP BY o.user_id
    HAVING count(*) >= 2
)
""",
    # traits: count, sum with a `where`, most_frequent is_not_null; a nested `any` group.
    # One pass over purchases; a favourite category exists when any category does.
    "vips": """
SELECT u.user_id
FROM users AS u
WHERE u.user_id IN (
    SELECT o.user_id
    FROM purchases AS o
    LEFT JOIN products AS pr ON pr.product_id = o.product_id
    GROUP BY o.user_id
    HAVING (
            count(*) >= 5
            OR sum(o.amount) FILTER (
                WHERE o.purchased_at > TIMESTAMP '2025-12-01 00:00:00'
                    AND o.purchased_at <= TIMESTAMP '2026-12-01 00:00:00'
            ) >= 1000
        )
        AND count(pr.category) > 0
)
""",
    # audience membership, relation has: false with a `where`
    "vips_without_email_consent": """
SELECT u.user_id
FROM users AS u
WHERE u.user_id IN (
        SELECT o.user_id
        FROM purchases AS o
        LEFT JOIN products AS pr ON pr.product_id = o.product_id
        GROUP BY o.user_id
        HAVING (
                count(*) >= 5
                OR sum(o.amount) FILTER (
                    WHERE o.purchased_at > TIMESTAMP '2025-12-01 00:00:00'
                        AND o.purchased_at <= TIMESTAMP '2026-12-01 00:00:00'
                ) >= 1000
            )
            AND count(pr.category) > 0
    )
    AND NOT EXISTS (
        SELECT 1
        FROM consents AS c
        WHERE c.user_id = u.user_id AND c.granted = true AND lower(c.purpose) = 'email'
    )
""",
    # traits: max more_than_ago, count between, first, formula, list not_in; not a member
    # of VIPs; groups nested two deep. One pass over purchases computes every aggregate;
    # the first channel is looked up only for parents with one or two orders, at their
    # first purchase time, ties to the lowest order id. (Computing it in the same pass
    # with arg_min_null(channel, (purchased_at, order_id)) was 1.5 times slower.)
    "winback": """
WITH orders AS (
    SELECT
        o.user_id,
        count(*) AS order_count,
        min(o.purchased_at) AS first_purchase_at,
        max(o.purchased_at) AS last_purchase_at,
        sum(o.amount) FILTER (
            WHERE o.purchased_at > TIMESTAMP '2025-12-01 00:00:00'
                AND o.purchased_at <= TIMESTAMP '2026-12-01 00:00:00'
        ) AS spend_last_year,
        count(pr.category) > 0 AS has_category,
        count(*) FILTER (WHERE lower(pr.category) = 'grocery') > 0 AS bought_grocery
    FROM purchases AS o
    LEFT JOIN products AS pr ON pr.product_id = o.product_id
    GROUP BY o.user_id
)
SELECT u.user_id
FROM users AS u
JOIN orders AS o ON o.user_id = u.user_id
WHERE u.lifetime_value >= 200
    AND (
        o.last_purchase_at < TIMESTAMP '2026-06-04 00:00:00'
        OR (
            o.order_count BETWEEN 1 AND 2
            AND (
                SELECT lower(arg_min_null(f.channel, f.order_id))
                FROM purchases AS f
                WHERE f.user_id = o.user_id AND f.purchased_at = o.first_purchase_at
            ) = 'store'
        )
    )
    AND NOT (
        (o.order_count >= 5 OR coalesce(o.spend_last_year, 0) >= 1000) AND o.has_category
    )
    AND NOT o.bought_grocery
""",
}
