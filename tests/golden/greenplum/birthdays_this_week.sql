SELECT
  "p0"."user_id"
FROM "users" AS "p0"
WHERE
  (
    (
      NOT "p0"."birthday" IS NULL
      AND (
        (
          (
            EXTRACT(MONTH FROM "p0"."birthday") * 100 + EXTRACT(DAY FROM "p0"."birthday")
          ) BETWEEN 1201 AND 1208
        )
      )
    )
    AND (
      NOT "p0"."marketing_opt_in" IS NULL AND (
        "p0"."marketing_opt_in" = TRUE
      )
    )
    AND NOT "p0"."email" IS NULL
    AND (
      NOT "p0"."email" IS NULL AND (
        RIGHT(LOWER("p0"."email"), 4) = '.com'
      )
    )
  )
