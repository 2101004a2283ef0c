import { Button, Group, Modal, Text } from "@mantine/core";
import type { ReactNode } from "react";

export function ConfirmModal(props: {
  opened: boolean;
  title: string;
  message: ReactNode;
  confirmLabel: string;
  color?: string;
  loading?: boolean;
  onConfirm: () => void;
  onClose: () => void;
}) {
  return (
    <Modal opened={props.opened} onClose={props.onClose} title={props.title}>
      <Text size="sm">{props.message}</Text>
      <Group justify="flex-end" mt="lg">
        <Button variant="default" onClick={props.onClose}>
          Cancel
        </Button>
        <Button
          color={props.color ?? "red"}
          loading={props.loading}
          onClick={props.onConfirm}
          data-autofocus
          data-testid="confirm"
        >
          {props.confirmLabel}
        </Button>
      </Group>
    </Modal>
  );
}
