/** Settings: users, roles and their grants, API tokens, and the audit log. */
import { Alert, Badge, Button, Checkbox, Code, Group, Modal, MultiSelect, NumberInput, PasswordInput, Stack, Table, Tabs, Text, TextInput } from "@mantine/core";
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useNavigate, useParams } from "react-router-dom";

import { api } from "../../api/endpoints";
import { errorText, keys, notifyDone } from "../../api/queries";
import type { Permission, Role, TokenCreated } from "../../api/types";
import { useCan } from "../../auth/auth";
import { CodeBlock, EmptyState, ErrorState, PageHeader, TableSkeleton } from "../../components/common";
import { formatAgo, formatTime } from "../../components/format";

export function SettingsPage() {
  const { tab = "users" } = useParams();
  const navigate = useNavigate();
  return (
    <>
      <PageHeader title="Settings" description="Who can use the studio and what they may do, API tokens for scripts, and a record of every change." />
      <Tabs value={tab} onChange={(t) => navigate(`/settings/${t}`)}>
        <Tabs.List>
          <Tabs.Tab value="users" data-testid="tab-users">Users</Tabs.Tab>
          <Tabs.Tab value="roles" data-testid="tab-roles">Roles</Tabs.Tab>
          <Tabs.Tab value="tokens" data-testid="tab-tokens">API tokens</Tabs.Tab>
          <Tabs.Tab value="audit" data-testid="tab-audit">Audit log</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="users" pt="md">{tab === "users" && <Users />}</Tabs.Panel>
        <Tabs.Panel value="roles" pt="md">{tab === "roles" && <Roles />}</Tabs.Panel>
        <Tabs.Panel value="tokens" pt="md">{tab === "tokens" && <Tokens />}</Tabs.Panel>
        <Tabs.Panel value="audit" pt="md">{tab === "audit" && <Audit />}</Tabs.Panel>
      </Tabs>
    </>
  );
}

function Users() {
  const users = useQuery({ queryKey: keys.users, queryFn: api.users.list });
  const roles = useQuery({ queryKey: keys.roles, queryFn: api.roles.list });
  const queryClient = useQueryClient();
  const can = useCan();
  const [adding, setAdding] = useState(false);
  const update = useMutation({
    mutationFn: (v: { id: string; roles?: string[]; disabled?: boolean }) => api.users.update(v.id, { roles: v.roles, disabled: v.disabled }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: keys.users }),
  });
  if (users.isPending) return <TableSkeleton />;
  if (users.error) return <ErrorState error={users.error} onRetry={() => users.refetch()} />;
  const roleNames = (roles.data ?? []).map((r) => r.name);
  return (
    <Stack>
      {can("users:manage") && <Button w="fit-content" onClick={() => setAdding(true)} data-testid="new-user">Add a user</Button>}
      <Table data-testid="users-table">
        <Table.Thead><Table.Tr><Table.Th>User</Table.Th><Table.Th>Roles</Table.Th><Table.Th>Last sign-in</Table.Th><Table.Th>Active</Table.Th></Table.Tr></Table.Thead>
        <Table.Tbody>
          {users.data.map((u) => (
            <Table.Tr key={u.id}>
              <Table.Td><Text fw={600} size="sm">{u.name || u.email}</Text><Text size="xs" c="dimmed">{u.email}</Text></Table.Td>
              <Table.Td>
                <MultiSelect aria-label={`Roles of ${u.email}`} data={roleNames} value={u.roles} onChange={(r) => update.mutate({ id: u.id, roles: r })} disabled={!can("users:manage")} maw={360} />
              </Table.Td>
              <Table.Td>{formatAgo(u.last_login_at)}</Table.Td>
              <Table.Td><Checkbox aria-label="Active" checked={!u.disabled} onChange={(e) => update.mutate({ id: u.id, disabled: !e.currentTarget.checked })} disabled={!can("users:manage")} /></Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {adding && <UserModal roles={roleNames} onClose={() => setAdding(false)} />}
    </Stack>
  );
}

function UserModal(props: { roles: string[]; onClose: () => void }) {
  const queryClient = useQueryClient();
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [roles, setRoles] = useState<string[]>([]);
  const create = useMutation({
    mutationFn: () => api.users.create({ email: email.trim(), name: name.trim(), password, roles }),
    meta: { quiet: true },
    onSuccess: (u) => {
      notifyDone(`Added ${u.email}`);
      queryClient.invalidateQueries({ queryKey: keys.users });
      props.onClose();
    },
  });
  const failure = create.error ? errorText(create.error) : null;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <Modal opened onClose={props.onClose} title="Add a user">
      <form onSubmit={submit}>
        <Stack>
          {failure && <Alert color="red" title={failure.title}>{failure.message}</Alert>}
          <TextInput label="Email" type="email" required value={email} onChange={(e) => setEmail(e.currentTarget.value)} data-autofocus />
          <TextInput label="Name" value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <PasswordInput label="First password" description="They can change it after signing in" required value={password} onChange={(e) => setPassword(e.currentTarget.value)} autoComplete="new-password" />
          <MultiSelect label="Roles" data={props.roles} value={roles} onChange={setRoles} />
          <Group justify="flex-end"><Button variant="default" onClick={props.onClose}>Cancel</Button><Button type="submit" loading={create.isPending}>Add</Button></Group>
        </Stack>
      </form>
    </Modal>
  );
}

function Roles() {
  const roles = useQuery({ queryKey: keys.roles, queryFn: api.roles.list });
  const permissions = useQuery({ queryKey: keys.permissions, queryFn: api.roles.permissions, staleTime: Infinity });
  const [editing, setEditing] = useState<Role | "new" | null>(null);
  const can = useCan();
  if (roles.isPending || permissions.isPending) return <TableSkeleton />;
  if (roles.error || permissions.error) return <ErrorState error={roles.error ?? permissions.error} />;
  return (
    <Stack>
      {can("users:manage") && <Button w="fit-content" onClick={() => setEditing("new")}>Add a role</Button>}
      <Table>
        <Table.Thead><Table.Tr><Table.Th>Role</Table.Th><Table.Th>Grants</Table.Th><Table.Th /></Table.Tr></Table.Thead>
        <Table.Tbody>
          {roles.data.map((r) => (
            <Table.Tr key={r.name}>
              <Table.Td><Text fw={600} size="sm">{r.name} {r.builtin && <Badge size="xs" variant="light">built in</Badge>}</Text><Text size="xs" c="dimmed">{r.description}</Text></Table.Td>
              <Table.Td><Group gap={4}>{r.grants.map((g) => <Badge key={`${g.permission}${g.scope}`} variant="default" style={{ textTransform: "none" }}>{g.permission}{g.scope && g.scope !== "*" ? ` on ${scopeLabel(g.scope)}` : ""}</Badge>)}</Group></Table.Td>
              <Table.Td>{can("users:manage") && !r.builtin && <Button size="compact-xs" variant="subtle" onClick={() => setEditing(r)}>Edit</Button>}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {editing && <RoleModal existing={editing === "new" ? null : editing} permissions={permissions.data} onClose={() => setEditing(null)} />}
    </Stack>
  );
}

/** A grant's scope in words: "*" is everywhere; "destination:CRM" is "CRM". */
function scopeLabel(scope: string): string {
  return scope === "*" ? "everywhere" : scope.slice(scope.indexOf(":") + 1);
}

function RoleModal(props: { existing: Role | null; permissions: Permission[]; onClose: () => void }) {
  const queryClient = useQueryClient();
  const sources = useQuery({ queryKey: keys.sources, queryFn: api.sources.list });
  const destinations = useQuery({ queryKey: keys.destinations, queryFn: api.destinations.list });
  const [name, setName] = useState(props.existing?.name ?? "");
  const [description, setDescription] = useState(props.existing?.description ?? "");
  // Each permission granted, with the scopes it is granted on ("*": every source or destination).
  const [granted, setGranted] = useState<Map<string, string[]>>(() => {
    const map = new Map<string, string[]>();
    for (const g of props.existing?.grants ?? []) map.set(g.permission, [...(map.get(g.permission) ?? []), g.scope]);
    return map;
  });
  const scopes = (kind: string | null) => {
    if (!kind) return [];
    const names = kind === "source" ? (sources.data ?? []).map((s) => s.name) : (destinations.data ?? []).map((d) => d.name);
    return [
      { value: "*", label: `every ${kind}` },
      ...names.map((n) => ({ value: `${kind}:${n}`, label: n })),
    ];
  };
  const choose = (permission: string, chosen: string[]) =>
    setGranted((g) => {
      const next = new Map(g);
      const before = g.get(permission) ?? [];
      // "every …" replaces named scopes, and a named scope replaces "every …".
      const added = chosen.filter((c) => !before.includes(c));
      const scoped = added.includes("*") ? ["*"] : added.length ? chosen.filter((c) => c !== "*") : chosen;
      if (scoped.length) next.set(permission, scoped);
      else next.delete(permission);
      return next;
    });
  const save = useMutation({
    mutationFn: () => {
      const grants = [...granted].flatMap(([permission, on]) => on.map((scope) => ({ permission, scope })));
      return props.existing ? api.roles.update(props.existing.name, { description, grants }) : api.roles.create({ name: name.trim(), description, grants });
    },
    meta: { quiet: true },
    onSuccess: () => {
      notifyDone("Saved the role");
      queryClient.invalidateQueries({ queryKey: keys.roles });
      props.onClose();
    },
  });
  const failure = save.error ? errorText(save.error) : null;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate();
  };
  return (
    <Modal opened onClose={props.onClose} title={props.existing ? `Edit ${props.existing.name}` : "Add a role"} size="xl">
      <form onSubmit={submit}>
        <Stack>
          {failure && <Alert color="red" title={failure.title}>{failure.message}</Alert>}
          <TextInput label="Name" required value={name} onChange={(e) => setName(e.currentTarget.value)} disabled={Boolean(props.existing)} data-autofocus />
          <TextInput label="Description" value={description} onChange={(e) => setDescription(e.currentTarget.value)} />
          <Text size="sm" fw={500}>Permissions, each on every source or destination or only on some</Text>
          <Table verticalSpacing={6}>
            <Table.Tbody>
              {props.permissions.map((p) => {
                const on = granted.get(p.name) ?? [];
                return (
                  <Table.Tr key={p.name}>
                    <Table.Td w={36}>
                      <Checkbox
                        aria-label={p.name}
                        checked={on.length > 0}
                        onChange={(e) => choose(p.name, e.currentTarget.checked ? ["*"] : [])}
                        data-testid="role-permission"
                        data-permission={p.name}
                      />
                    </Table.Td>
                    <Table.Td>
                      <Code>{p.name}</Code>
                      <Text size="xs" c="dimmed">{p.description}</Text>
                    </Table.Td>
                    <Table.Td w={300}>
                      {p.scope_kind ? (
                        <MultiSelect
                          aria-label={`Where ${p.name} applies`}
                          placeholder={on.length ? undefined : "not granted"}
                          data={scopes(p.scope_kind)}
                          value={on}
                          onChange={(chosen) => choose(p.name, chosen)}
                          size="xs"
                          data-testid="role-scope"
                        />
                      ) : (
                        <Text size="xs" c="dimmed">workspace-wide</Text>
                      )}
                    </Table.Td>
                  </Table.Tr>
                );
              })}
            </Table.Tbody>
          </Table>
          <Group justify="flex-end"><Button variant="default" onClick={props.onClose}>Cancel</Button><Button type="submit" loading={save.isPending}>Save</Button></Group>
        </Stack>
      </form>
    </Modal>
  );
}

function Tokens() {
  const tokens = useQuery({ queryKey: keys.tokens, queryFn: api.tokens.list });
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [days, setDays] = useState<number | string>(90);
  const [created, setCreated] = useState<TokenCreated | null>(null);
  const create = useMutation({
    mutationFn: () => api.tokens.create(name.trim(), typeof days === "number" ? days : null),
    onSuccess: (t) => {
      setCreated(t);
      setName("");
      queryClient.invalidateQueries({ queryKey: keys.tokens });
    },
  });
  const revoke = useMutation({ mutationFn: api.tokens.remove, onSuccess: () => queryClient.invalidateQueries({ queryKey: keys.tokens }) });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (name.trim()) create.mutate();
  };
  return (
    <Stack>
      <form onSubmit={submit}>
        <Group align="flex-end">
          <TextInput label="New token name" description="What will use it, e.g. 'CI deploy'" value={name} onChange={(e) => setName(e.currentTarget.value)} w={280} data-testid="token-name" />
          <NumberInput label="Expires after (days)" description="Empty: never" min={1} value={days} onChange={setDays} w={180} />
          <Button type="submit" loading={create.isPending} disabled={!name.trim()} data-testid="create-token">Create token</Button>
        </Group>
      </form>
      {created && (
        <Alert color="teal" title={`Token ${created.token.name} created`} withCloseButton onClose={() => setCreated(null)} data-testid="token-created">
          <Text size="sm" mb="xs">Copy it now: it is shown only once. Send it as <Code>Authorization: Bearer …</Code>.</Text>
          <CodeBlock code={created.value} />
        </Alert>
      )}
      {tokens.isPending ? <TableSkeleton /> : tokens.error ? <ErrorState error={tokens.error} /> : tokens.data.length === 0 ? (
        <EmptyState title="No API tokens" description="Tokens let scripts and CI call the API as you, without a browser session." />
      ) : (
        <Table>
          <Table.Thead><Table.Tr><Table.Th>Name</Table.Th><Table.Th>Owner</Table.Th><Table.Th>Prefix</Table.Th><Table.Th>Last used</Table.Th><Table.Th>Expires</Table.Th><Table.Th /></Table.Tr></Table.Thead>
          <Table.Tbody>
            {tokens.data.map((t) => (
              <Table.Tr key={t.id} opacity={t.active ? 1 : 0.5}>
                <Table.Td>{t.name}</Table.Td>
                <Table.Td>{t.user_email}</Table.Td>
                <Table.Td className="mono">{t.prefix}…</Table.Td>
                <Table.Td>{formatAgo(t.last_used_at)}</Table.Td>
                <Table.Td>{t.expires_at ? formatTime(t.expires_at) : "never"}</Table.Td>
                <Table.Td>{t.active ? <Button size="compact-xs" color="red" variant="subtle" onClick={() => revoke.mutate(t.id)}>Revoke</Button> : <Badge color="gray">revoked</Badge>}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Stack>
  );
}

function Audit() {
  const audit = useInfiniteQuery({
    queryKey: keys.audit,
    queryFn: ({ pageParam }) => api.audit.list(pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  if (audit.isPending) return <TableSkeleton />;
  if (audit.error) return <ErrorState error={audit.error} onRetry={() => audit.refetch()} />;
  const entries = audit.data.pages.flatMap((p) => p.entries);
  if (entries.length === 0) return <EmptyState title="Nothing recorded yet" description="Sign-ins and every change to audiences, syncs, destinations, the schema and users show here." />;
  return (
    <Stack>
      <Table data-testid="audit-table" fz="sm">
        <Table.Thead><Table.Tr><Table.Th>When</Table.Th><Table.Th>Who</Table.Th><Table.Th>What</Table.Th><Table.Th>On</Table.Th><Table.Th>Details</Table.Th></Table.Tr></Table.Thead>
        <Table.Tbody>
          {entries.map((e) => (
            <Table.Tr key={e.id}>
              <Table.Td>{formatTime(e.at)}</Table.Td>
              <Table.Td>{e.actor_email ?? "system"}</Table.Td>
              <Table.Td><Code>{e.action}</Code></Table.Td>
              <Table.Td>{e.target_type}{e.target_name ? ` ${e.target_name}` : ""}</Table.Td>
              <Table.Td><Text size="xs" c="dimmed" lineClamp={2}>{Object.keys(e.details ?? {}).length ? JSON.stringify(e.details) : ""}</Text></Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {audit.hasNextPage && <Button variant="default" w="fit-content" onClick={() => audit.fetchNextPage()} loading={audit.isFetchingNextPage}>Older entries</Button>}
    </Stack>
  );
}
