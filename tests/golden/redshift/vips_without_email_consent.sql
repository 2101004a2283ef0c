SELECT
  "p0"."user_id"
FROM "users" AS "p0"
WHERE
  (
    (
      (
        EXISTS(
          SELECT
            1
          FROM (
            SELECT
              "r1"."user_id" AS "__key0",
              COUNT(*) AS "__value"
            FROM "purchases" AS "r1"
            GROUP BY
              "r1"."user_id"
          ) AS "m2"
          WHERE
            "m2"."__key0" = "p0"."user_id"
            AND (
              NOT "m2"."__value" IS NULL AND (
                "m2"."__value" >= 5
              )
            )
        )
        OR EXISTS(
          SELECT
            1
          FROM (
            SELECT
              "r3"."user_id" AS "__key0",
              COALESCE(SUM("r3"."amount"), 0) AS "__value"
            FROM "purchases" AS "r3"
            WHERE
              NOT "r3"."purchased_at" IS NULL
              AND (
                "r3"."purchased_at" > CAST('2025-12-01 00:00:00' AS TIMESTAMP)
                AND "r3"."purchased_at" <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
              )
            GROUP BY
              "r3"."user_id"
          ) AS "m4"
          WHERE
            "m4"."__key0" = "p0"."user_id"
            AND (
              NOT "m4"."__value" IS NULL AND (
                "m4"."__value" >= 1000
              )
            )
        )
      )
      AND EXISTS(
        SELECT
          1
        FROM "purchases" AS "r5"
        JOIN "products" AS "r6"
          ON "r6"."product_id" = "r5"."product_id"
        WHERE
          "r5"."user_id" = "p0"."user_id" AND NOT "r6"."category" IS NULL
      )
    )
    AND NOT EXISTS(
      SELECT
        1
      FROM (
        SELECT
          CAST(user_id AS VARCHAR(MAX)) || ':' || purpose AS consent_id,
          user_id,
          purpose,
          granted,
          updated_at
        FROM consents
      ) AS "r7"
      WHERE
        "r7"."user_id" = "p0"."user_id"
        AND (
          (
            NOT "r7"."purpose" IS NULL AND (
              LOWER("r7"."purpose") = 'email'
            )
          )
          AND (
            NOT "r7"."granted" IS NULL AND (
              "r7"."granted" = TRUE
            )
          )
        )
    )
  )
