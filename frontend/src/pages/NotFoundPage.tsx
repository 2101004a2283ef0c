import { Button } from "@mantine/core";
import { Link } from "react-router-dom";

import { EmptyState } from "../components/common";

export function NotFoundPage() {
  return (
    <EmptyState
      title="There is no such page"
      description="The link may be old, or the thing it pointed to was renamed or deleted."
      action={
        <Button component={Link} to="/audiences">
          Go to audiences
        </Button>
      }
    />
  );
}
