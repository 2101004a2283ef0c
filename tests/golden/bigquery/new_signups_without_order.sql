SELECT
  `p0`.`user_id`
FROM `users` AS `p0`
WHERE
  (
    (
      NOT `p0`.`signup_at` IS NULL
      AND (
        `p0`.`signup_at` > CAST('2026-11-01 00:00:00' AS DATETIME)
        AND `p0`.`signup_at` <= CAST('2026-12-01 00:00:00' AS DATETIME)
      )
    )
    AND NOT EXISTS(
      SELECT
        1
      FROM `events` AS `r1`
      WHERE
        `r1`.`user_id` = `p0`.`user_id`
        AND `r1`.`occurred_at` <= CAST('2026-12-01 00:00:00' AS DATETIME)
        AND `r1`.`event_type` = 'order_completed'
    )
    AND NOT (
      NOT `p0`.`plan` IS NULL AND (
        LOWER(`p0`.`plan`) = 'pro'
      )
    )
  )
