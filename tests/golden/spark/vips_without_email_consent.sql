SELECT
  `p0`.`user_id`
FROM `users` AS `p0`
WHERE
  (
    (
      (
        EXISTS(
          SELECT
            1
          FROM (
            SELECT
              `r1`.`user_id` AS `__key0`,
              COUNT(*) AS `__value`
            FROM `purchases` AS `r1`
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
        OR EXISTS(
          SELECT
            1
          FROM (
            SELECT
              `r3`.`user_id` AS `__key0`,
              COALESCE(SUM(`r3`.`amount`), 0) AS `__value`
            FROM `purchases` AS `r3`
            WHERE
              NOT `r3`.`purchased_at` IS NULL
              AND (
                `r3`.`purchased_at` > CAST('2025-12-01 00:00:00' AS TIMESTAMP)
                AND `r3`.`purchased_at` <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
              )
            GROUP BY
              `r3`.`user_id`
          ) AS `m4`
          WHERE
            `m4`.`__key0` = `p0`.`user_id`
            AND (
              NOT `m4`.`__value` IS NULL AND (
                `m4`.`__value` >= 1000
              )
            )
        )
      )
      AND EXISTS(
        SELECT
          1
        FROM (
          SELECT
            `t8`.`__key0` AS `__key0`,
            `t8`.`__value` AS `__value`
          FROM (
            SELECT
              `c7`.`__key0`,
              `c7`.`__value`,
              ROW_NUMBER() OVER (
                PARTITION BY `c7`.`__key0`
                ORDER BY `c7`.`__n` DESC, `c7`.`__value` ASC NULLS LAST
              ) AS `__rank`
            FROM (
              SELECT
                `r5`.`user_id` AS `__key0`,
                `r6`.`category` AS `__value`,
                COUNT(*) AS `__n`
              FROM `purchases` AS `r5`
              JOIN `products` AS `r6`
                ON `r6`.`product_id` = `r5`.`product_id`
              WHERE
                NOT `r6`.`category` IS NULL
              GROUP BY
                `r5`.`user_id`,
                `r6`.`category`
            ) AS `c7`
          ) AS `t8`
          WHERE
            `t8`.`__rank` = 1
        ) AS `m9`
        WHERE
          `m9`.`__key0` = `p0`.`user_id` AND NOT `m9`.`__value` IS NULL
      )
    )
    AND NOT EXISTS(
      SELECT
        1
      FROM `consents` AS `r10`
      WHERE
        `r10`.`user_id` = `p0`.`user_id`
        AND (
          (
            NOT `r10`.`purpose` IS NULL AND (
              LOWER(`r10`.`purpose`) = 'email'
            )
          )
          AND (
            NOT `r10`.`granted` IS NULL AND (
              `r10`.`granted` = TRUE
            )
          )
        )
    )
  )
