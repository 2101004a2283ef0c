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
    AND (
      "p0"."plan" IS NULL OR NOT (
        LOWER("p0"."plan") = 'free'
      )
    )
    AND (
      NOT "p0"."marketing_opt_in" IS NULL AND (
        "p0"."marketing_opt_in" = TRUE
      )
    )
  )
