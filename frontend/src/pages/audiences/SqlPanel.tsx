import { Group, Select, Text } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";

import { api } from "../../api/endpoints";
import { keys } from "../../api/queries";
import { CodeBlock, ErrorState, TableSkeleton } from "../../components/common";

const DIALECTS = [
  { value: "", label: "The warehouse's own" },
  { value: "duckdb", label: "DuckDB" },
  { value: "postgres", label: "PostgreSQL" },
  { value: "snowflake", label: "Snowflake" },
  { value: "bigquery", label: "BigQuery" },
  { value: "databricks", label: "Databricks" },
  { value: "spark", label: "Spark" },
  { value: "redshift", label: "Redshift" },
  { value: "trino", label: "Trino / Athena" },
  { value: "tsql", label: "SQL Server / Synapse / Fabric" },
];

export function SqlPanel(props: { name: string; savedJson: string | null }) {
  const [dialect, setDialect] = useState("");
  const sql = useQuery({
    queryKey: [...keys.sql(props.name, dialect), props.savedJson],
    queryFn: () => api.audiences.sql(props.name, dialect || undefined),
  });
  return (
    <>
      <Group mb="sm" align="flex-end">
        <Select label="Dialect" data={DIALECTS} value={dialect} onChange={(v) => setDialect(v ?? "")} allowDeselect={false} w={260} data-testid="sql-dialect" />
        <Text size="xs" c="dimmed" maw={420}>
          The query that selects this audience's members. Corral runs it in your warehouse; you can run it yourself too.
        </Text>
      </Group>
      {sql.isPending ? <TableSkeleton rows={6} /> : sql.error ? <ErrorState error={sql.error} /> : <CodeBlock code={sql.data.sql} testId="audience-sql" />}
    </>
  );
}
