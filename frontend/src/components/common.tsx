/** Small pieces every screen uses: headers, empty and error states, skeletons, code. */
import {
  ActionIcon,
  Alert,
  Badge,
  Box,
  Button,
  Code,
  CopyButton,
  Group,
  Paper,
  ScrollArea,
  Skeleton,
  Stack,
  Text,
  Title,
  Tooltip,
} from "@mantine/core";
import { IconAlertTriangle, IconCheck, IconCopy } from "@tabler/icons-react";
import type { ReactNode } from "react";

import { ApiError } from "../api/client";

export function PageHeader(props: { title: ReactNode; description?: ReactNode; actions?: ReactNode }) {
  return (
    <Group justify="space-between" align="flex-start" mb="lg" wrap="nowrap">
      <Box>
        <Title order={2}>{props.title}</Title>
        {props.description && (
          <Text c="dimmed" size="sm" mt={4} maw={720}>
            {props.description}
          </Text>
        )}
      </Box>
      {props.actions && <Group gap="sm" wrap="nowrap">{props.actions}</Group>}
    </Group>
  );
}

export function EmptyState(props: {
  icon?: ReactNode;
  title: string;
  description: ReactNode;
  action?: ReactNode;
  testId?: string;
}) {
  return (
    <Paper withBorder p="xl" radius="md" data-testid={props.testId ?? "empty-state"}>
      <Stack align="center" gap="xs" py="lg">
        {props.icon}
        <Text fw={600} size="lg">
          {props.title}
        </Text>
        <Text c="dimmed" size="sm" ta="center" maw={520}>
          {props.description}
        </Text>
        {props.action && <Box mt="sm">{props.action}</Box>}
      </Stack>
    </Paper>
  );
}

/** An API error in place: what went wrong, where, and the hint that says what to do. */
export function ErrorState(props: { error: unknown; onRetry?: () => void; title?: string }) {
  const error = props.error;
  const api = error instanceof ApiError ? error : null;
  return (
    <Alert
      color="red"
      variant="light"
      icon={<IconAlertTriangle size={18} />}
      title={props.title ?? (api ? api.message : "Something went wrong")}
      data-testid="error-state"
    >
      <Stack gap={4}>
        {props.title && <Text size="sm">{api ? api.message : String(error)}</Text>}
        {!api && !props.title && <Text size="sm">{error instanceof Error ? error.message : String(error)}</Text>}
        {api?.where && (
          <Text size="sm">
            Where: <Code>{api.where}</Code>
          </Text>
        )}
        {api?.hint && <Text size="sm">{api.hint}</Text>}
        {props.onRetry && (
          <Group mt="xs">
            <Button size="xs" variant="white" color="red" onClick={props.onRetry}>
              Try again
            </Button>
          </Group>
        )}
      </Stack>
    </Alert>
  );
}

export function TableSkeleton(props: { rows?: number; testId?: string }) {
  return (
    <Stack gap="xs" data-testid={props.testId ?? "loading"} aria-busy="true" aria-label="Loading">
      <Skeleton height={32} />
      {Array.from({ length: props.rows ?? 5 }, (_, i) => (
        <Skeleton key={i} height={24} opacity={1 - i * 0.12} />
      ))}
    </Stack>
  );
}

/** Code in a scrolling box with a copy button; `wrap` breaks long lines (logs) instead of scrolling. */
export function CodeBlock(props: { code: string; testId?: string; maxHeight?: number; wrap?: boolean }) {
  return (
    <Box pos="relative">
      <ScrollArea.Autosize mah={props.maxHeight ?? 480} type="auto">
        <Code block data-testid={props.testId} style={{ whiteSpace: props.wrap ? "pre-wrap" : "pre", overflowWrap: "anywhere", fontSize: 12.5, paddingRight: 44 }}>
          {props.code}
        </Code>
      </ScrollArea.Autosize>
      <Box pos="absolute" top={6} right={6}>
        <CopyButton value={props.code}>
          {({ copied, copy }) => (
            <Tooltip label={copied ? "Copied" : "Copy"}>
              <ActionIcon variant="default" onClick={copy} aria-label="Copy to clipboard">
                {copied ? <IconCheck size={16} /> : <IconCopy size={16} />}
              </ActionIcon>
            </Tooltip>
          )}
        </CopyButton>
      </Box>
    </Box>
  );
}

const STATUS_COLORS: Record<string, string> = {
  succeeded: "teal",
  partial: "yellow",
  failed: "red",
  running: "blue",
  queued: "gray",
  needs_confirmation: "orange",
  canceled: "gray",
};

const STATUS_LABELS: Record<string, string> = {
  needs_confirmation: "needs confirmation",
};

export function StatusBadge(props: { status: string | null | undefined; testId?: string }) {
  if (!props.status) return <Badge color="gray" variant="outline" data-testid={props.testId}>never ran</Badge>;
  return (
    <Badge color={STATUS_COLORS[props.status] ?? "gray"} variant="light" data-testid={props.testId}>
      {STATUS_LABELS[props.status] ?? props.status}
    </Badge>
  );
}
