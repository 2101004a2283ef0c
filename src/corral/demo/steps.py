"""The SQL that builds each demo table: `STEPS` maps a table name to its statements.

`corral.demo.generate` runs the statements in the order of its `TABLES`, one stage each.

Every statement is plain DuckDB SQL over three kinds of input, all set up by
`corral.demo.generate` before the first step and removed after the last:

- `$name` query parameters: sizes, epoch-second bounds and the lists of
  `corral.demo.vocabulary`, weighted ones spread over equal slots so that a uniform index
  picks by weight. Each statement is passed only the parameters it names.
- the lookup views named in `LOOKUPS` (countries, places, categories) registered from Arrow.
- the `demo_u(key, salt)` macro of `DRAW_MACRO`, a seeded uniform draw in [0, 1).

Epoch seconds (`*_s`) are used throughout and turned into timestamps only when a table is
written. The temp tables `demo_people` and `demo_locations` carry per-user and per-address
draws between stages; `CLEAN_UP` drops them.

Each key space owns a range of salts so draws never repeat across entities: users 1xx,
locations 2xx, households 3xx, consents 4xx, sessions 5xx, session steps 6xx, products 7xx.
"""

# A uniform draw in [0, 1) for (key, salt). The outer hash mixes the bits again: DuckDB
# folds the last argument of a multi-argument hash in with a plain XOR, so without it two
# draws that differ only there would differ by the same bit pattern for every key.
DRAW_MACRO = """
CREATE OR REPLACE TEMP MACRO demo_u(key, salt) AS
    hash(hash(key::BIGINT, salt::INTEGER, getvariable('demo_seed')::BIGINT))
    / 18446744073709551616.0
"""

# Arrow tables that `corral.demo.generate` registers as views under these names, in order:
# one row per country, per place and per product category.
LOOKUPS = ("demo_countries", "demo_places", "demo_categories")

# Everything a build leaves in the temp schema or the session, removed even if it fails.
CLEAN_UP = (
    "DROP TABLE IF EXISTS temp.demo_people",
    "DROP TABLE IF EXISTS temp.demo_locations",
    "DROP MACRO IF EXISTS temp.demo_u",
    "RESET VARIABLE demo_seed",
)

_PRODUCTS = """
CREATE OR REPLACE TABLE products AS
WITH numbered AS (
    SELECT
        range AS product_id,
        (range - 1) % $n_categories AS category_no
    FROM range(1, $n_categories * $per_category + 1)
)
SELECT
    n.product_id::BIGINT AS product_id,
    (
        c.brands[1 + floor(demo_u(n.product_id, 701) * len(c.brands))::INT] || ' '
        || $adjectives[1 + floor(demo_u(n.product_id, 702) * len($adjectives))::INT] || ' '
        || c.nouns[1 + floor(demo_u(n.product_id, 703) * len(c.nouns))::INT]
    )::VARCHAR AS name,
    c.category::VARCHAR AS category,
    c.brands[1 + floor(demo_u(n.product_id, 701) * len(c.brands))::INT]::VARCHAR AS brand,
    -- log-uniform list prices ending in .99
    (greatest(1, round(exp(
        ln(c.price_lo) + demo_u(n.product_id, 704) * (ln(c.price_hi) - ln(c.price_lo))
    ))) - 0.01)::DECIMAL(10, 2) AS price
FROM numbered AS n
JOIN demo_categories AS c USING (category_no)
ORDER BY product_id
"""

# One row per user with everything later stages draw from: identity, household, the
# activity window and how many sessions of each kind the user has. `engagement` is a
# Pareto draw, so a few users are very active and most are nearly idle.
_PEOPLE = """
CREATE OR REPLACE TEMP TABLE demo_people AS
WITH drawn AS (
    SELECT
        range AS user_id,
        -- a few people signed up twice: their second account repeats the previous user's
        -- name and email address, because those are drawn from the person's key
        CASE WHEN range > 1 AND demo_u(range, 112) < 0.004 THEN range - 1 ELSE range END
            AS person_key,
        CASE WHEN demo_u(range, 101) < 0.6
            THEN 1 + floor(demo_u(range, 102) * $households)::BIGINT
        END AS household_id,
        -- user ids follow signup order; signups grow over the two years
        $history_start_s + floor(
            pow((range - 1 + demo_u(range, 106)) / $users, 0.8) * $history_s
        )::BIGINT AS signup_s,
        least(200.0, pow(1 - demo_u(range, 121), -1 / 1.5)) AS engagement,
        signup_s < $as_of_s - 180 * 86400 AND demo_u(range, 125) < 0.3 AS lapsed
    FROM range(1, $users + 1)
),
windowed AS (
    SELECT
        *,
        signup_s + 60 AS win_start_s,
        -- lapsed users stop somewhere between signup and 90 days before the as-of date
        CASE WHEN lapsed
            THEN signup_s + floor(
                ($as_of_s - 90 * 86400 - signup_s) * (0.15 + 0.85 * demo_u(user_id, 126))
            )::BIGINT
            ELSE $as_of_s
        END - $session_span_s AS win_end_s
    FROM drawn
),
planned AS (
    SELECT
        *,
        greatest(win_end_s - win_start_s, 0) AS window_s,
        -- recent signups have had less time to be active
        least(1.0, sqrt(greatest(win_end_s - win_start_s, 0) / (180 * 86400))) AS tenure,
        demo_u(user_id, 122) < 0.74 OR engagement > 6 AS is_buyer
    FROM windowed
),
named AS (
    SELECT
        *,
        CASE WHEN demo_u(person_key, 101) < 0.6
            THEN 1 + floor(demo_u(person_key, 102) * $households)::BIGINT
        END AS person_household,
        $first_names[1 + floor(demo_u(person_key, 103) * len($first_names))::INT] AS first_name,
        -- most household members share a last name
        CASE WHEN person_household IS NOT NULL AND demo_u(person_key, 105) < 0.7
            THEN $last_names[1 + floor(demo_u(person_household, 303) * len($last_names))::INT]
            ELSE $last_names[1 + floor(demo_u(person_key, 104) * len($last_names))::INT]
        END AS last_name,
        2007 - floor(62 * pow(demo_u(person_key, 117), 1.5))::INT AS birth_year
    FROM planned
)
SELECT
    user_id,
    person_key,
    household_id,
    signup_s,
    win_start_s,
    win_end_s,
    CASE WHEN window_s > 0 AND is_buyer
        THEN 1 + floor((engagement - 1) * 1.35 * demo_u(user_id, 123) * tenure)::INT
        ELSE 0
    END AS n_purchases,
    CASE WHEN window_s > 0
        THEN floor(engagement * 1.1 * demo_u(user_id, 124) * tenure)::INT
        ELSE 0
    END AS n_browsing,
    $category_slots[1 + floor(demo_u(user_id, 128) * len($category_slots))::INT] AS fav_category,
    CASE WHEN demo_u(user_id, 127) < 0.55 THEN 1 ELSE 2 END AS pref_channel,
    CASE WHEN demo_u(user_id, 131) < 0.6 THEN 1 ELSE 2 END AS signup_channel,
    first_name,
    last_name,
    CASE WHEN demo_u(user_id, 116) >= 0.1
        THEN make_date(birth_year, 1, 1) + floor(demo_u(user_id, 118) * 365)::INT
    END AS birthday,
    demo_u(user_id, 113) >= 0.35 AS has_phone,
    -- engaged users upgrade more often
    CASE
        WHEN demo_u(user_id, 119) + 0.08 * ln(engagement) < 0.72 THEN 1
        WHEN demo_u(user_id, 119) + 0.08 * ln(engagement) < 0.93 THEN 2
        ELSE 3
    END AS plan_no,
    demo_u(user_id, 120) < 0.6 AS marketing_opt_in,
    regexp_replace(strip_accents(first_name), '[^A-Za-z]', '', 'g') AS first_ascii,
    regexp_replace(strip_accents(last_name), '[^A-Za-z]', '', 'g') AS last_ascii,
    birth_year
FROM named
"""

# Where each household lives, and each user without a household: household members share
# an address. Keys are household ids, and minus the user id for users living alone.
_LOCATIONS = """
CREATE OR REPLACE TEMP TABLE demo_locations AS
WITH keyed AS (
    SELECT range AS loc_key FROM range(1, $households + 1)
    UNION ALL
    SELECT -user_id FROM demo_people WHERE household_id IS NULL
),
countried AS (
    SELECT
        k.loc_key,
        c.*,
        floor(c.n_places * pow(demo_u(k.loc_key, 202), 1.6))::INT AS place_no
    FROM keyed AS k
    JOIN demo_countries AS c
        ON c.country = $country_slots[
            1 + floor(demo_u(k.loc_key, 201) * len($country_slots))::INT
        ]
),
placed AS (
    SELECT
        c.loc_key, c.country, c.calling_code, c.trunk_prefix, c.zip_style,
        p.state, p.city, p.region, p.zip_stem, p.area_code,
        lpad(floor(demo_u(c.loc_key, 203) * 1000)::VARCHAR, 3, '0') AS d3,
        chr(65 + floor(demo_u(c.loc_key, 204) * 26)::INT) AS letter1,
        chr(65 + floor(demo_u(c.loc_key, 205) * 26)::INT) AS letter2,
        floor(demo_u(c.loc_key, 206) * 10)::INT::VARCHAR AS digit
    FROM countried AS c
    JOIN demo_places AS p USING (country, place_no)
)
SELECT
    loc_key, country, calling_code, trunk_prefix, state, city, region, area_code,
    CASE zip_style
        WHEN 'd2' THEN zip_stem || left(d3, 2)
        WHEN 'd3' THEN zip_stem || d3
        WHEN 'ca' THEN zip_stem || ' ' || digit || letter1 || left(d3, 1)
        WHEN 'gb' THEN zip_stem || ' ' || digit || letter1 || letter2
        WHEN 'nl' THEN zip_stem || left(d3, 2) || ' ' || letter1 || letter2
        WHEN 'br' THEN zip_stem || d3 || '-' || digit || left(d3, 2)
        WHEN 'jp' THEN zip_stem || '-' || d3 || digit
    END AS zip
FROM placed
"""

_HOUSEHOLDS = """
CREATE OR REPLACE TABLE households AS
WITH members AS (
    SELECT household_id, count(*) AS n_members
    FROM demo_people
    WHERE household_id IS NOT NULL
    GROUP BY household_id
)
SELECT
    h.range::BIGINT AS household_id,
    (greatest(coalesce(m.n_members, 0), 1) + CASE
        WHEN demo_u(h.range, 301) < 0.35 THEN 0
        WHEN demo_u(h.range, 301) < 0.65 THEN 1
        WHEN demo_u(h.range, 301) < 0.85 THEN 2
        ELSE 3
    END)::INTEGER AS size,
    $income_bands[1 + floor(demo_u(h.range, 302) * len($income_bands))::INT]::VARCHAR
        AS income_band,
    l.region::VARCHAR AS region
FROM range(1, $households + 1) AS h
LEFT JOIN members AS m ON m.household_id = h.range
JOIN demo_locations AS l ON l.loc_key = h.range
ORDER BY household_id
"""

# Sessions expand into events. Kinds: 1 purchase, 2 checkout abandoned, 3 cart abandoned,
# 4 browsing, 5 marketing email. Channel codes index $channels: 1 web, 2 app, 3 store,
# 4 email. Type codes index $event_types.
_EVENTS = """
CREATE OR REPLACE TABLE events AS
WITH sessions AS (
    SELECT
        user_id, win_start_s, win_end_s, n_purchases, fav_category, pref_channel,
        unnest(range(n_purchases + n_browsing)) AS session_no
    FROM demo_people
    WHERE n_purchases + n_browsing > 0
),
kinded AS (
    SELECT
        *,
        user_id * 4096 + session_no AS session_key,
        CASE
            WHEN session_no < n_purchases THEN 1
            WHEN demo_u(session_key, 501) < 0.33 THEN 5
            WHEN demo_u(session_key, 501) < 0.70 THEN 4
            WHEN demo_u(session_key, 501) < 0.88 THEN 3
            ELSE 2
        END AS kind
    FROM sessions
),
channeled AS (
    SELECT
        *,
        CASE
            WHEN kind = 5 THEN 4
            WHEN kind = 1 AND demo_u(session_key, 502) < 0.12 THEN 3
            WHEN demo_u(session_key, 503) < 0.8 THEN pref_channel
            ELSE 3 - pref_channel
        END AS channel_code,
        -- recent days are denser: the distance back from the window end is u squared;
        -- many first orders come within a week of signup
        CASE
            WHEN kind = 1 AND session_no = 0 AND demo_u(session_key, 504) < 0.4
            THEN win_start_s + floor(
                pow(demo_u(session_key, 505), 3) * least(7 * 86400, win_end_s - win_start_s)
            )
            ELSE win_end_s - floor(pow(demo_u(session_key, 505), 2) * (win_end_s - win_start_s))
        END::BIGINT AS drawn_s,
        drawn_s // 86400 * 86400 + CASE WHEN demo_u(session_key, 516) < 0.7
            THEN 8 * 3600 + floor(demo_u(session_key, 517) * 15 * 3600)
            ELSE floor(demo_u(session_key, 517) * 86400)
        END::BIGINT AS waking_s,
        CASE WHEN demo_u(session_key, 510) < 0.55
            THEN fav_category
            ELSE $category_slots[1 + floor(demo_u(session_key, 511) * len($category_slots))::INT]
        END AS category_no
    FROM kinded
),
sized AS (
    SELECT
        user_id, session_no, session_key, kind, channel_code, category_no,
        -- most sessions move to waking hours on the day drawn, unless that leaves the window
        CASE WHEN waking_s BETWEEN win_start_s AND win_end_s THEN waking_s ELSE drawn_s END
            AS start_s,
        -- funnel kinds count their steps back from the last one: see `typed`
        CASE
            WHEN kind = 1 AND channel_code = 3 THEN 1
            WHEN kind = 1 AND demo_u(session_key, 506) < 0.15 THEN 2
            WHEN kind <= 3 THEN 5 - kind + (demo_u(session_key, 507) < 0.35)::INT
            WHEN kind = 4 THEN 1 + floor(demo_u(session_key, 506) * 4)::INT
            ELSE 1 + (demo_u(session_key, 506) < 0.4)::INT
                + (demo_u(session_key, 506) < 0.4 AND demo_u(session_key, 507) < 0.6)::INT
        END AS n_steps,
        CASE
            WHEN kind = 5 THEN 10 + floor(590 * demo_u(session_key, 508))
            WHEN kind = 4 THEN 10 + floor(290 * demo_u(session_key, 508))
            -- some shoppers think it over for up to two hours between steps
            WHEN demo_u(session_key, 509) < 0.1 THEN 600 + floor(6600 * demo_u(session_key, 508))
            ELSE 20 + floor(1480 * pow(demo_u(session_key, 508), 2))
        END::BIGINT AS gap_s,
        1 + category_no + $n_categories * floor(
            $per_category * pow(demo_u(session_key, 512), 2.5)
        )::BIGINT AS session_product,
        CASE
            WHEN demo_u(session_key, 513) < 0.85 THEN 1
            WHEN demo_u(session_key, 513) < 0.96 THEN 2
            ELSE 3
        END AS quantity,
        CASE WHEN demo_u(session_key, 514) < 0.15
            THEN 10 + 5 * floor(demo_u(session_key, 515) * 5)::INT
            ELSE 0
        END AS discount_pct
    FROM channeled
),
stepped AS (
    SELECT *, unnest(range(n_steps)) AS step FROM sized
),
typed AS (
    SELECT
        user_id, session_no, step, kind, quantity, discount_pct,
        session_key * 8 + step AS step_key,
        CASE
            WHEN kind = 4 AND step = 0 THEN CASE channel_code WHEN 2 THEN 9 ELSE 2 END
            WHEN kind = 4 THEN CASE WHEN demo_u(step_key, 601) < 0.6 THEN 3 ELSE 2 END
            WHEN kind = 5 THEN [7, 8, 2][step + 1]
            -- funnel kinds: counted back from the last step, a purchase ends with
            -- order_completed (6), checkout_started (5), added_to_cart (4),
            -- product_viewed (3), opened (2 or 9); kind 2 starts one back, kind 3 two
            WHEN n_steps - step + kind - 1 <= 4 THEN 7 - (n_steps - step + kind - 1)
            ELSE CASE channel_code WHEN 2 THEN 9 ELSE 2 END
        END AS type_code,
        -- email clicks land on the web site
        CASE WHEN kind = 5 AND step = 2 THEN 1 ELSE channel_code END AS event_channel,
        start_s + step * gap_s + floor(demo_u(step_key, 602) * gap_s * 0.5)::BIGINT
            AS occurred_s,
        CASE
            WHEN type_code NOT IN (3, 4, 5, 6) THEN NULL
            WHEN kind = 4 THEN 1 + category_no + $n_categories * floor(
                $per_category * pow(demo_u(step_key, 603), 2.5)
            )::BIGINT
            ELSE session_product
        END AS product_id
    FROM stepped
),
signups AS (
    SELECT
        user_id,
        -1 AS session_no,
        0 AS step,
        1 AS type_code,
        signup_channel AS channel_code,
        signup_s AS occurred_s,
        NULL::BIGINT AS product_id,
        1 AS quantity,
        0 AS discount_pct
    FROM demo_people
),
happened AS (
    SELECT user_id, session_no, step, type_code, event_channel AS channel_code, occurred_s,
        product_id, quantity, discount_pct
    FROM typed
    UNION ALL
    SELECT * FROM signups
),
-- only the sort key and narrow codes travel through the sort, which keeps it in memory
priced AS (
    SELECT
        h.occurred_s,
        h.user_id,
        h.session_no::INTEGER AS session_no,
        h.step::UTINYINT AS step,
        h.type_code::UTINYINT AS type_code,
        h.channel_code::UTINYINT AS channel_code,
        h.product_id::INTEGER AS product_id,
        CASE WHEN h.type_code = 6
            THEN (round(p.price * h.quantity * (100 - h.discount_pct))::DECIMAL(12, 0)
                * 0.01)::DECIMAL(10, 2)
        END AS revenue
    FROM happened AS h
    LEFT JOIN products AS p USING (product_id)
),
-- Event ids follow time. Numbering within each day, then adding the events of earlier
-- days, keeps the sort parallel where one global row_number() would run on one thread.
numbered AS (
    SELECT
        *,
        occurred_s // 86400 AS day,
        row_number() OVER (
            PARTITION BY occurred_s // 86400 ORDER BY occurred_s, user_id, session_no, step
        ) AS number_in_day
    FROM priced
),
days AS (
    SELECT
        day,
        coalesce(sum(count(*)) OVER (
            ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ), 0) AS earlier
    FROM numbered
    GROUP BY day
)
SELECT
    (d.earlier + n.number_in_day)::BIGINT AS event_id,
    n.user_id::BIGINT AS user_id,
    $event_types[n.type_code]::VARCHAR AS event_type,
    make_timestamp(n.occurred_s * 1000000) AS occurred_at,
    n.product_id::BIGINT AS product_id,
    $categories[1 + (n.product_id - 1) % $n_categories]::VARCHAR AS category,
    n.revenue,
    $channels[n.channel_code]::VARCHAR AS channel
FROM numbered AS n
JOIN days AS d USING (day)
ORDER BY event_id
"""

_PURCHASES = """
CREATE OR REPLACE TABLE purchases AS
SELECT
    row_number() OVER (ORDER BY event_id)::BIGINT AS order_id,
    user_id,
    product_id,
    revenue AS amount,
    'USD' AS currency,
    channel,
    occurred_at AS purchased_at
FROM events
WHERE event_type = 'order_completed'
ORDER BY order_id
"""

_USERS = """
CREATE OR REPLACE TABLE users AS
WITH spent AS (
    SELECT user_id, sum(amount) AS total FROM purchases GROUP BY user_id
),
addressed AS (
    SELECT
        p.*,
        -- the number grows with the warehouse so that few addresses collide by chance
        floor(1 + demo_u(p.person_key, 108) * $email_numbers)::INT::VARCHAR AS number,
        CASE floor(demo_u(p.person_key, 107) * 5)::INT
            WHEN 0 THEN p.first_ascii || '.' || p.last_ascii || number
            WHEN 1 THEN p.first_ascii || p.last_ascii || number
            WHEN 2 THEN left(p.first_ascii, 1) || '.' || p.last_ascii || number
            WHEN 3 THEN p.first_ascii || '_' || p.last_ascii || number
            ELSE p.first_ascii || right(p.birth_year::VARCHAR, 2) || '.' || number
        END || '@' || $email_domains[
            1 + floor(demo_u(p.person_key, 110) * len($email_domains))::INT
        ] AS address,
        -- a second account repeats the address in capitals
        CASE
            WHEN p.person_key <> p.user_id THEN upper(address)
            WHEN demo_u(p.user_id, 111) < 0.88 THEN lower(address)
            WHEN demo_u(p.user_id, 111) < 0.97 THEN address
            ELSE upper(address)
        END AS cased
    FROM demo_people AS p
),
phoned AS (
    SELECT
        d.*,
        l.country, l.state, l.city, l.zip,
        lpad(floor(demo_u(d.user_id, 115) * 100)::INT::VARCHAR, 2, '0') AS dd,
        lpad(floor(demo_u(d.user_id, 115) * 10000)::INT::VARCHAR, 4, '0') AS dddd,
        CASE
            WHEN NOT d.has_phone THEN NULL
            WHEN l.calling_code = '1' THEN CASE floor(demo_u(d.user_id, 114) * 5)::INT
                WHEN 0 THEN '+1 ' || l.area_code || '-555-01' || dd
                WHEN 1 THEN '(' || l.area_code || ') 555 01' || dd
                WHEN 2 THEN l.area_code || '55501' || dd
                WHEN 3 THEN l.area_code || '.555.01' || dd
                ELSE '1-' || l.area_code || '-555-01' || dd
            END
            ELSE CASE floor(demo_u(d.user_id, 114) * 3)::INT
                WHEN 0 THEN '+' || l.calling_code || ' ' || l.area_code || ' 555 ' || dddd
                WHEN 1 THEN l.trunk_prefix || l.area_code || ' 555 ' || dddd
                ELSE '+' || l.calling_code || l.area_code || '555' || dddd
            END
        END AS phone
    FROM addressed AS d
    JOIN demo_locations AS l ON l.loc_key = coalesce(d.household_id, -d.user_id)
)
SELECT
    p.user_id::BIGINT AS user_id,
    -- about one address in twenty carries stray whitespace from a form
    CASE
        WHEN demo_u(p.user_id, 130) >= 0.05 THEN p.cased
        WHEN demo_u(p.user_id, 130) < 0.02 THEN ' ' || p.cased
        WHEN demo_u(p.user_id, 130) < 0.04 THEN p.cased || ' '
        ELSE '  ' || p.cased || ' '
    END::VARCHAR AS email,
    p.phone::VARCHAR AS phone,
    p.first_name::VARCHAR AS first_name,
    p.last_name::VARCHAR AS last_name,
    p.country::VARCHAR AS country,
    p.state::VARCHAR AS state,
    CASE WHEN demo_u(p.user_id, 129) >= 0.02 THEN p.city END::VARCHAR AS city,
    CASE WHEN demo_u(p.user_id, 132) >= 0.03 THEN p.zip END::VARCHAR AS zip,
    p.birthday::DATE AS birthday,
    make_timestamp(p.signup_s * 1000000) AS signup_at,
    $plans[p.plan_no]::VARCHAR AS plan,
    coalesce(s.total, 0)::DECIMAL(12, 2) AS lifetime_value,
    p.marketing_opt_in AS marketing_opt_in,
    p.household_id::BIGINT AS household_id
FROM phoned AS p
LEFT JOIN spent AS s USING (user_id)
ORDER BY user_id
"""

# Every user has an email consent row (it mirrors marketing_opt_in); some have ads, and
# some with a phone have sms.
_CONSENTS = """
CREATE OR REPLACE TABLE consents AS
WITH purposes AS (
    SELECT
        user_id, signup_s, marketing_opt_in, has_phone,
        unnest([1, 2, 3]) AS purpose_no
    FROM demo_people
)
SELECT
    user_id::BIGINT AS user_id,
    $purposes[purpose_no]::VARCHAR AS purpose,
    CASE purpose_no
        WHEN 1 THEN marketing_opt_in
        WHEN 2 THEN demo_u(user_id, 403) < 0.55
        ELSE demo_u(user_id, 404) < 0.45
    END AS granted,
    make_timestamp(1000000 * (signup_s + CASE
        WHEN purpose_no = 1 AND demo_u(user_id, 405) < 0.6
        THEN floor(demo_u(user_id, 406) * least(600, $as_of_s - signup_s))
        ELSE floor(demo_u(user_id, 406 + purpose_no) * ($as_of_s - signup_s))
    END)::BIGINT) AS updated_at
FROM purposes
WHERE purpose_no = 1
    OR (purpose_no = 2 AND demo_u(user_id, 401) < 0.65)
    OR (purpose_no = 3 AND has_phone AND demo_u(user_id, 402) < 0.6)
ORDER BY user_id, purpose
"""

# The statements that build each table, keyed and built in the order of `TABLES`.
STEPS: dict[str, tuple[str, ...]] = {
    "products": (_PRODUCTS,),
    "households": (_PEOPLE, _LOCATIONS, _HOUSEHOLDS),
    "events": (_EVENTS,),
    "purchases": (_PURCHASES,),
    "users": (_USERS,),
    "consents": (_CONSENTS,),
}
