SELECT
  `p0`.`user_id`
FROM `users` AS `p0`
WHERE
  (
    EXISTS(
      SELECT
        1
      FROM (
        SELECT
          `r1`.`user_id` AS `__key0`,
          COUNT(*) AS `__value`
        FROM `events` AS `r1`
        WHERE
          `r1`.`occurred_at` <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
          AND `r1`.`event_type` = 'app_opened'
          AND (
            `r1`.`occurred_at` > CAST('2026-11-01 00:00:00' AS TIMESTAMP)
            AND `r1`.`occurred_at` <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
          )
        GROUP BY
          `r1`.`user_id`
      ) AS `m2`
      WHERE
        `m2`.`__key0` = `p0`.`user_id`
        AND (
          NOT `m2`.`__value` IS NULL AND (
            `m2`.`__value` >= 5
          )
        )
    )
    AND EXISTS(
      SELECT
        1
      FROM `events` AS `r3`
      WHERE
        `r3`.`user_id` = `p0`.`user_id`
        AND `r3`.`occurred_at` <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
        AND `r3`.`event_type` = 'email_opened'
        AND (
          `r3`.`occurred_at` >= CAST('2026-11-01 00:00:00' AS TIMESTAMP)
          AND `r3`.`occurred_at` < CAST('2026-12-01 00:00:00' AS TIMESTAMP)
        )
    )
  )
