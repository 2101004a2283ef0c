import { AppShell, Avatar, Burger, Group, Menu, NavLink, Text, UnstyledButton, useMantineColorScheme } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import {
  IconArrowsExchange,
  IconDatabase,
  IconLogout,
  IconMoon,
  IconSchema,
  IconSend,
  IconSettings,
  IconSun,
  IconUsersGroup,
} from "@tabler/icons-react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Link, Outlet, useLocation } from "react-router-dom";

import { api } from "../api/endpoints";
import { keys } from "../api/queries";
import { useMe } from "../auth/auth";

const NAV = [
  { to: "/audiences", label: "Audiences", icon: IconUsersGroup, hint: "Who: groups of customers built from conditions" },
  { to: "/syncs", label: "Syncs", icon: IconArrowsExchange, hint: "Send audiences to destinations, on a schedule" },
  { to: "/destinations", label: "Destinations", icon: IconSend, hint: "Ad platforms, CRMs and tools Corral sends to" },
  { to: "/schema", label: "Schema", icon: IconSchema, hint: "Models, relationships, events and traits" },
  { to: "/sources", label: "Sources", icon: IconDatabase, hint: "The warehouse connection" },
  { to: "/settings", label: "Settings", icon: IconSettings, hint: "Users, roles, API tokens, audit log" },
];

export function Layout() {
  const [opened, { toggle, close }] = useDisclosure();
  const location = useLocation();
  const me = useMe();
  const queryClient = useQueryClient();
  const { colorScheme, toggleColorScheme } = useMantineColorScheme();
  const logout = useMutation({
    mutationFn: api.auth.logout,
    onSettled: () => {
      // Keep the `me` query that <RequireLogin> observes (see LoginPage), and empty it.
      queryClient.removeQueries({ predicate: (query) => query.queryKey[0] !== keys.me[0] });
      queryClient.setQueryData(keys.me, null);
    },
  });

  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 220, breakpoint: "sm", collapsed: { mobile: !opened } }} padding="lg">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between">
          <Group gap="sm">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Toggle navigation" />
            <Text fw={800} size="lg" component={Link} to="/audiences" c="indigo" style={{ textDecoration: "none" }}>
              Corral
            </Text>
            <Text c="dimmed" size="sm" visibleFrom="xs">
              studio
            </Text>
          </Group>
          <Menu position="bottom-end" withinPortal>
            <Menu.Target>
              <UnstyledButton data-testid="user-menu" aria-label="Account menu">
                <Group gap="xs">
                  <Avatar size="sm" color="indigo" radius="xl">
                    {(me.name || me.email).slice(0, 1).toUpperCase()}
                  </Avatar>
                  <Text size="sm" visibleFrom="sm">
                    {me.name || me.email}
                  </Text>
                </Group>
              </UnstyledButton>
            </Menu.Target>
            <Menu.Dropdown>
              <Menu.Label>{me.email}</Menu.Label>
              <Menu.Item
                leftSection={colorScheme === "dark" ? <IconSun size={16} /> : <IconMoon size={16} />}
                onClick={() => toggleColorScheme()}
              >
                {colorScheme === "dark" ? "Light" : "Dark"} mode
              </Menu.Item>
              <Menu.Item leftSection={<IconLogout size={16} />} onClick={() => logout.mutate()} data-testid="logout">
                Sign out
              </Menu.Item>
            </Menu.Dropdown>
          </Menu>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Main navigation">
        {NAV.map((item) => {
          const active = location.pathname.startsWith(item.to);
          return (
            <NavLink
              key={item.to}
              component={Link}
              to={item.to}
              label={item.label}
              description={active ? undefined : undefined}
              title={item.hint}
              leftSection={<item.icon size={18} stroke={1.6} />}
              active={active}
              onClick={close}
              data-testid={`nav-${item.label.toLowerCase()}`}
              className={active ? "nav-link-active" : undefined}
              style={{ borderRadius: 8 }}
            />
          );
        })}
      </AppShell.Navbar>
      <AppShell.Main>
        <Outlet />
      </AppShell.Main>
    </AppShell>
  );
}
