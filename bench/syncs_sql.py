"""The SQL of the sync benchmark (`bench/syncs.py`) that is not Corral's: what an engineer
writes by hand for the same work, the 1% change and its undoing, and the checks that both
sides ended alike.

The only names formatted in are tables (identifiers); no value is pasted into SQL.
"""

# The same row hash as Corral's on DuckDB (the engine's own `hash` of the values, a number),
# so the diff compares against the state table's hashes; the key as the table has it.
HAND_CURRENT = """
SELECT user_id AS key,
       hash(email, first_name, last_name, country, plan, lifetime_value) AS hash,
       email, first_name, last_name, country, plan, lifetime_value
FROM users
WHERE user_id IS NOT NULL
"""

# The state joins on its key and hash alone (a narrow hash table builds much faster than
# one carrying every delivered field); removed rows carry what was delivered, read back
# from the state by key (a destination may need it to remove them).
HAND_DIFF = """
CREATE OR REPLACE TABLE corral_bench.hand_plan AS
WITH diff AS (
    SELECT CASE WHEN s.__key IS NULL THEN 'add' WHEN c.key IS NULL THEN 'remove'
                ELSE 'change' END AS op,
           coalesce(c.key, s.__key) AS key,
           c.hash, c.email, c.first_name, c.last_name, c.country, c.plan, c.lifetime_value
    FROM ({current}) AS c
    FULL OUTER JOIN (SELECT __key, __hash FROM {state}) AS s ON c.key = s.__key
    WHERE c.hash IS DISTINCT FROM s.__hash
)
SELECT * FROM diff WHERE op <> 'remove'
UNION ALL
SELECT 'remove', __key, __hash, f_email, f_first_name, f_last_name, f_country, f_plan,
       f_lifetime_value
FROM {state}
WHERE __key IN (SELECT key FROM diff WHERE op = 'remove')
"""

HAND_COUNTS = "SELECT op, count(*) FROM corral_bench.hand_plan GROUP BY op"

# Rows, hashes or values in one plan and not in the other.
PLANS_DIFFER = """
SELECT count(*) FROM (
    (SELECT __op, __key, __hash, f_email, f_first_name, f_last_name, f_country, f_plan,
            f_lifetime_value FROM {plan}
     EXCEPT ALL SELECT * FROM corral_bench.hand_plan)
    UNION ALL
    (SELECT * FROM corral_bench.hand_plan
     EXCEPT ALL SELECT __op, __key, __hash, f_email, f_first_name, f_last_name, f_country,
                       f_plan, f_lifetime_value FROM {plan})
)
"""

# The 1% change, and its undoing, from the original values kept in the copy. Every changed
# row's hash changes: the country always flips, the lifetime value always grows.
CHANGE_USERS = """
UPDATE users
SET country = CASE WHEN o.country = 'US' THEN 'CA' ELSE 'US' END,
    lifetime_value = coalesce(o.lifetime_value, 0) + 1
FROM corral_bench.originals AS o
WHERE users.user_id = o.user_id
"""

RESTORE_USERS = """
UPDATE users SET country = o.country, lifetime_value = o.lifetime_value
FROM corral_bench.originals AS o
WHERE users.user_id = o.user_id
"""

# Sorted by the key's bytes, as Corral sends them: a B-tree keyed table loads rows in
# its own order about three times faster than in any other (the index grows at its end).
RAW_ROWS = """
SELECT CAST(user_id AS VARCHAR) AS key, email, first_name, last_name, country, plan,
       lifetime_value
FROM users
WHERE user_id IS NOT NULL
ORDER BY key
"""

# As Corral creates its table (keys compared by their bytes, `fill_factor` 90), so both
# COPYs fill the same pages.
RAW_TABLE_DDL = """
CREATE TABLE {table} (key text COLLATE "C" PRIMARY KEY, email text, first_name text,
                      last_name text, country text, plan text, lifetime_value numeric)
WITH (fillfactor = 90)
"""

# Order-independent contents of a PostgreSQL table: equal sums mean equal tables (with
# overwhelming likelihood).
PG_CHECKSUM = """
SELECT count(*), sum(hashtext(concat_ws('|', key, email, first_name, last_name, country, plan,
                                        lifetime_value::text))::bigint)
FROM {table}
"""

PG_TOTALS = """
SELECT count(*), sum(lifetime_value), count(*) FILTER (WHERE country = 'US') FROM {table}
"""

DUCKDB_TOTALS = """
SELECT count(*), sum(lifetime_value), count(*) FILTER (WHERE country = 'US')
FROM users WHERE user_id IS NOT NULL
"""
