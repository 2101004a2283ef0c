SELECT
  [p0].[user_id]
FROM [users] AS [p0]
WHERE
  (
    (
      NOT [p0].[birthday] IS NULL
      AND (
        (
          (
            DATEPART(MONTH, [p0].[birthday]) * 100 + DATEPART(DAY, [p0].[birthday])
          ) BETWEEN 1201 AND 1208
        )
      )
    )
    AND (
      NOT [p0].[marketing_opt_in] IS NULL AND (
        [p0].[marketing_opt_in] = 1
      )
    )
    AND NOT [p0].[email] IS NULL
    AND (
      NOT [p0].[email] IS NULL AND (
        RIGHT(LOWER([p0].[email]), 4) = '.com'
      )
    )
  )
