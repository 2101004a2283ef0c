SELECT
  "p0"."user_id"
FROM "users" AS "p0"
WHERE
  EXISTS(
    SELECT
      1
    FROM "events" AS "s1"
    JOIN "events" AS "s2"
      ON (
        "s2"."user_id" = "s1"."user_id"
        AND "s2"."occurred_at" > "s1"."occurred_at"
        AND "s2"."occurred_at" <= TIMESTAMPADD(HOUR, 1, "s1"."occurred_at")
      )
      AND "s2"."occurred_at" <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
      AND "s2"."event_type" = 'added_to_cart'
      AND "s2"."occurred_at" > CAST('2026-11-01 00:00:00' AS TIMESTAMP)
    WHERE
      "s1"."user_id" = "p0"."user_id"
      AND "s1"."occurred_at" <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
      AND "s1"."event_type" = 'product_viewed'
      AND (
        "s1"."occurred_at" > CAST('2026-11-01 00:00:00' AS TIMESTAMP)
        AND "s1"."occurred_at" <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
      )
      AND NOT EXISTS(
        SELECT
          1
        FROM "events" AS "s3"
        WHERE
          (
            "s3"."user_id" = "s2"."user_id"
            AND "s3"."occurred_at" > "s2"."occurred_at"
            AND "s3"."occurred_at" <= TIMESTAMPADD(DAY, 1, "s2"."occurred_at")
          )
          AND "s3"."occurred_at" <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
          AND "s3"."event_type" = 'checkout_started'
          AND "s3"."occurred_at" > CAST('2026-11-01 00:00:00' AS TIMESTAMP)
      )
  )
