SELECT
  [p0].[user_id]
FROM [users] AS [p0]
LEFT JOIN (
  SELECT
    [g2].[user_id] AS [__key0],
    COUNT(*) AS [__v0],
    SUM(
      CASE
        WHEN NOT [g2].[purchased_at] IS NULL
        AND (
          [g2].[purchased_at] > CAST('2025-12-01 00:00:00' AS DATETIME2)
          AND [g2].[purchased_at] <= CAST('2026-12-01 00:00:00' AS DATETIME2)
        )
        THEN [g2].[amount]
      END
    ) AS [__v1]
  FROM [purchases] AS [g2]
  GROUP BY
    [g2].[user_id]
) AS [a3]
  ON [a3].[__key0] = [p0].[user_id]
WHERE
  (
    (
      (
        (
          NOT COALESCE([a3].[__v0], 0) IS NULL AND (
            COALESCE([a3].[__v0], 0) >= 5
          )
        )
        OR (
          NOT COALESCE([a3].[__v1], 0) IS NULL AND (
            COALESCE([a3].[__v1], 0) >= 1000
          )
        )
      )
      AND EXISTS(
        SELECT
          1
        FROM [purchases] AS [r1]
        JOIN [products] AS [r2]
          ON [r2].[product_id] = [r1].[product_id]
        WHERE
          [r1].[user_id] = [p0].[user_id] AND NOT [r2].[category] IS NULL
      )
    )
    AND NOT EXISTS(
      SELECT
        1
      FROM (
        SELECT
          CAST(user_id AS VARCHAR(MAX)) + ':' + purpose AS consent_id,
          user_id AS user_id,
          purpose AS purpose,
          granted AS granted,
          updated_at AS updated_at
        FROM consents
      ) AS [r3]
      WHERE
        [r3].[user_id] = [p0].[user_id]
        AND (
          (
            NOT [r3].[purpose] IS NULL AND (
              LOWER([r3].[purpose]) = 'email'
            )
          )
          AND (
            NOT [r3].[granted] IS NULL AND (
              [r3].[granted] = 1
            )
          )
        )
    )
  )
