SELECT
  "p0"."user_id"
FROM "users" AS "p0"
LEFT JOIN (
  SELECT
    "g2"."user_id" AS "__key0",
    MAX("g2"."purchased_at") AS "__v0",
    COUNT(*) AS "__v1",
    MIN("g2"."purchased_at") AS "__v2",
    SUM(
      CASE
        WHEN NOT "g2"."purchased_at" IS NULL
        AND (
          "g2"."purchased_at" > CAST('2025-12-01 00:00:00' AS TIMESTAMP)
          AND "g2"."purchased_at" <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
        )
        THEN "g2"."amount"
      END
    ) AS "__v3"
  FROM "purchases" AS "g2"
  GROUP BY
    "g2"."user_id"
) AS "a3"
  ON "a3"."__key0" = "p0"."user_id"
WHERE
  (
    (
      (
        NOT "a3"."__v0" IS NULL
        AND (
          "a3"."__v0" < CAST('2026-06-04 00:00:00' AS TIMESTAMP)
        )
      )
      OR (
        (
          NOT COALESCE("a3"."__v1", 0) IS NULL
          AND (
            COALESCE("a3"."__v1", 0) BETWEEN 1 AND 2
          )
        )
        AND EXISTS(
          SELECT
            1
          FROM "purchases" AS "r1"
          WHERE
            "r1"."user_id" = "p0"."user_id"
            AND "r1"."purchased_at" = "a3"."__v2"
            AND NOT EXISTS(
              SELECT
                1
              FROM "purchases" AS "r2"
              WHERE
                "r2"."user_id" = "r1"."user_id"
                AND "r2"."purchased_at" = "r1"."purchased_at"
                AND "r2"."order_id" < "r1"."order_id"
            )
            AND (
              NOT "r1"."channel" IS NULL AND (
                LOWER("r1"."channel") = 'store'
              )
            )
        )
      )
    )
    AND NOT (
      (
        (
          (
            NOT COALESCE("a3"."__v1", 0) IS NULL AND (
              COALESCE("a3"."__v1", 0) >= 5
            )
          )
          OR (
            NOT COALESCE("a3"."__v3", 0) IS NULL AND (
              COALESCE("a3"."__v3", 0) >= 1000
            )
          )
        )
        AND EXISTS(
          SELECT
            1
          FROM "purchases" AS "r3"
          JOIN "products" AS "r4"
            ON "r4"."product_id" = "r3"."product_id"
          WHERE
            "r3"."user_id" = "p0"."user_id" AND NOT "r4"."category" IS NULL
        )
      )
    )
    AND (
      NOT CASE
        WHEN "p0"."lifetime_value" >= 1000
        THEN 'gold'
        WHEN "p0"."lifetime_value" >= 200
        THEN 'silver'
        ELSE 'bronze'
      END IS NULL
      AND (
        LOWER(
          CASE
            WHEN "p0"."lifetime_value" >= 1000
            THEN 'gold'
            WHEN "p0"."lifetime_value" >= 200
            THEN 'silver'
            ELSE 'bronze'
          END
        ) IN ('gold', 'silver')
      )
    )
    AND NOT EXISTS(
      SELECT
        1
      FROM "purchases" AS "r5"
      JOIN "products" AS "r6"
        ON "r6"."product_id" = "r5"."product_id"
      WHERE
        "r5"."user_id" = "p0"."user_id"
        AND (
          NOT "r6"."category" IS NULL AND (
            LOWER("r6"."category") IN ('grocery')
          )
        )
    )
  )
