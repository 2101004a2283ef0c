SELECT
  "p0"."user_id"
FROM "users" AS "p0"
WHERE
  (
    (
      NOT "p0"."country" IS NULL AND (
        LOWER("p0"."country") IN ('us', 'ca')
      )
    )
    AND EXISTS(
      SELECT
        1
      FROM (
        SELECT
          "r1"."user_id" AS "__key0",
          COALESCE(SUM("r1"."amount"), 0) AS "__value"
        FROM "purchases" AS "r1"
        WHERE
          "r1"."purchased_at" > CAST('2025-12-01 00:00:00' AS TIMESTAMP)
          AND "r1"."purchased_at" <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
        GROUP BY
          "r1"."user_id"
      ) AS "m2"
      WHERE
        "m2"."__key0" = "p0"."user_id"
        AND (
          NOT "m2"."__value" IS NULL AND (
            "m2"."__value" >= 500
          )
        )
    )
    AND NOT EXISTS(
      SELECT
        1
      FROM "events" AS "r3"
      WHERE
        "r3"."user_id" = "p0"."user_id"
        AND "r3"."occurred_at" <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
        AND "r3"."event_type" = 'order_completed'
        AND (
          "r3"."occurred_at" > CAST('2026-09-02 00:00:00' AS TIMESTAMP)
          AND "r3"."occurred_at" <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
        )
    )
  )
