SELECT
  "p0"."user_id"
FROM "users" AS "p0"
WHERE
  (
    (
      EXISTS(
        SELECT
          1
        FROM (
          SELECT
            "r1"."user_id" AS "__key0",
            MAX("r1"."purchased_at") AS "__value"
          FROM "purchases" AS "r1"
          GROUP BY
            "r1"."user_id"
        ) AS "m2"
        WHERE
          "m2"."__key0" = "p0"."user_id"
          AND (
            NOT "m2"."__value" IS NULL
            AND (
              "m2"."__value" < CAST('2026-06-04 00:00:00' AS TIMESTAMP)
            )
          )
      )
      OR (
        EXISTS(
          SELECT
            1
          FROM (
            SELECT
              "r3"."user_id" AS "__key0",
              COUNT(*) AS "__value"
            FROM "purchases" AS "r3"
            GROUP BY
              "r3"."user_id"
          ) AS "m4"
          WHERE
            "m4"."__key0" = "p0"."user_id"
            AND (
              NOT "m4"."__value" IS NULL AND (
                "m4"."__value" BETWEEN 1 AND 2
              )
            )
        )
        AND EXISTS(
          SELECT
            1
          FROM (
            SELECT
              "t6"."__key0" AS "__key0",
              "t6"."__value" AS "__value"
            FROM (
              SELECT
                "r5"."user_id" AS "__key0",
                "r5"."channel" AS "__value",
                ROW_NUMBER() OVER (PARTITION BY "r5"."user_id" ORDER BY "r5"."purchased_at" ASC, "r5"."order_id" ASC) AS "__rank"
              FROM "purchases" AS "r5"
              WHERE
                NOT "r5"."purchased_at" IS NULL
            ) AS "t6"
            WHERE
              "t6"."__rank" = 1
          ) AS "m7"
          WHERE
            "m7"."__key0" = "p0"."user_id"
            AND (
              NOT "m7"."__value" IS NULL AND (
                LOWER("m7"."__value") = 'store'
              )
            )
        )
      )
    )
    AND NOT (
      (
        (
          EXISTS(
            SELECT
              1
            FROM (
              SELECT
                "r8"."user_id" AS "__key0",
                COUNT(*) AS "__value"
              FROM "purchases" AS "r8"
              GROUP BY
                "r8"."user_id"
            ) AS "m9"
            WHERE
              "m9"."__key0" = "p0"."user_id"
              AND (
                NOT "m9"."__value" IS NULL AND (
                  "m9"."__value" >= 5
                )
              )
          )
          OR EXISTS(
            SELECT
              1
            FROM (
              SELECT
                "r10"."user_id" AS "__key0",
                COALESCE(SUM("r10"."amount"), 0) AS "__value"
              FROM "purchases" AS "r10"
              WHERE
                NOT "r10"."purchased_at" IS NULL
                AND (
                  "r10"."purchased_at" > CAST('2025-12-01 00:00:00' AS TIMESTAMP)
                  AND "r10"."purchased_at" <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
                )
              GROUP BY
                "r10"."user_id"
            ) AS "m11"
            WHERE
              "m11"."__key0" = "p0"."user_id"
              AND (
                NOT "m11"."__value" IS NULL AND (
                  "m11"."__value" >= 1000
                )
              )
          )
        )
        AND EXISTS(
          SELECT
            1
          FROM "purchases" AS "r12"
          JOIN "products" AS "r13"
            ON "r13"."product_id" = "r12"."product_id"
          WHERE
            "r12"."user_id" = "p0"."user_id" AND NOT "r13"."category" IS NULL
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
      FROM "purchases" AS "r14"
      JOIN "products" AS "r15"
        ON "r15"."product_id" = "r14"."product_id"
      WHERE
        "r14"."user_id" = "p0"."user_id"
        AND (
          NOT "r15"."category" IS NULL AND (
            LOWER("r15"."category") IN ('grocery')
          )
        )
    )
  )
