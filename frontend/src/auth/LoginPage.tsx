import { Alert, Button, Center, Paper, PasswordInput, Stack, Text, TextInput, Title } from "@mantine/core";
import { useForm } from "@mantine/form";
import { useMutation, useQueryClient } from "@tanstack/react-query";

import { api } from "../api/endpoints";
import { errorText, keys } from "../api/queries";

export function LoginPage() {
  const queryClient = useQueryClient();
  const form = useForm({
    initialValues: { email: "", password: "" },
    validate: {
      email: (v) => (/^\S+@\S+$/.test(v) ? null : "Enter the email address you sign in with"),
      password: (v) => (v ? null : "Enter your password"),
    },
  });
  const login = useMutation({
    mutationFn: (values: { email: string; password: string }) => api.auth.login(values.email.trim(), values.password),
    meta: { quiet: true },
    onSuccess: async () => {
      // Forget what an earlier session loaded, but keep the `me` query itself: <RequireLogin>
      // observes it, and would keep showing this form if it were removed and fetched anew.
      queryClient.removeQueries({ predicate: (query) => query.queryKey[0] !== keys.me[0] });
      await queryClient.refetchQueries({ queryKey: keys.me });
    },
  });
  const failure = login.error ? errorText(login.error) : null;

  return (
    <Center mih="100vh" bg="var(--mantine-color-body)" p="md">
      <Paper withBorder shadow="sm" p="xl" w={400} radius="lg">
        <form onSubmit={form.onSubmit((values) => login.mutate(values))} noValidate>
          <Stack>
            <div>
              <Title order={2}>Corral</Title>
              <Text c="dimmed" size="sm">
                Sign in to the studio
              </Text>
            </div>
            {failure && (
              <Alert color="red" variant="light" data-testid="login-error" title={failure.title}>
                {failure.message}
              </Alert>
            )}
            <TextInput
              label="Email"
              type="email"
              autoComplete="username"
              autoFocus
              required
              data-testid="login-email"
              {...form.getInputProps("email")}
            />
            <PasswordInput
              label="Password"
              autoComplete="current-password"
              required
              data-testid="login-password"
              {...form.getInputProps("password")}
            />
            <Button type="submit" loading={login.isPending} data-testid="login-submit" fullWidth>
              Sign in
            </Button>
            <Text size="xs" c="dimmed">
              No account? An admin creates one under Settings → Users, or with{" "}
              <Text span ff="monospace" size="xs">corral user add</Text>.
            </Text>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
