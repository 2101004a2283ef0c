SELECT
  `p0`.`user_id`
FROM `users` AS `p0`
WHERE
  EXISTS(
    SELECT
      1
    FROM `households` AS `r1`
    WHERE
      `r1`.`household_id` = `p0`.`household_id`
      AND (
        (
          NOT `r1`.`size` IS NULL AND (
            `r1`.`size` >= 4
          )
        )
        AND (
          NOT `r1`.`income_band` IS NULL
          AND (
            LOWER(`r1`.`income_band`) IN ('100k-150k', '150k+')
          )
        )
      )
  )
