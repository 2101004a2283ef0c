SELECT
  "p0"."user_id"
FROM "users" AS "p0"
WHERE
  EXISTS(
    SELECT
      1
    FROM (
      SELECT
        "r1"."user_id" AS "__key0",
        COUNT(*) AS "__value"
      FROM "purchases" AS "r1"
      JOIN "products" AS "r2"
        ON "r2"."product_id" = "r1"."product_id"
      WHERE
        NOT "r2"."category" IS NULL AND (
          LOWER("r2"."category") = 'electronics'
        )
      GROUP BY
        "r1"."user_id"
    ) AS "m3"
    WHERE
      "m3"."__key0" = "p0"."user_id"
      AND (
        NOT "m3"."__value" IS NULL AND (
          "m3"."__value" >= 2
        )
      )
  )
