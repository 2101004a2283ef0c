SELECT
  `p0`.`user_id`
FROM `users` AS `p0`
WHERE
  EXISTS(
    SELECT
      1
    FROM (
      SELECT
        `r1`.`user_id` AS `__key0`,
        COALESCE(SUM(`r1`.`revenue`), 0) AS `__value`
      FROM `events` AS `r1`
      WHERE
        `r1`.`occurred_at` <= CAST('2026-12-01 00:00:00' AS DATETIME)
        AND `r1`.`event_type` = 'order_completed'
        AND (
          NOT `r1`.`channel` IS NULL AND (
            LOWER(`r1`.`channel`) = 'web'
          )
        )
        AND (
          `r1`.`occurred_at` > CAST('2026-06-04 00:00:00' AS DATETIME)
          AND `r1`.`occurred_at` <= CAST('2026-12-01 00:00:00' AS DATETIME)
        )
      GROUP BY
        `r1`.`user_id`
    ) AS `m2`
    WHERE
      `m2`.`__key0` = `p0`.`user_id`
      AND (
        NOT `m2`.`__value` IS NULL AND (
          `m2`.`__value` >= 300
        )
      )
  )
