/** Who is signed in: the `me` query, the login screen when there is nobody, and `can()`. */
import { Center, Loader } from "@mantine/core";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { createContext, useContext, useEffect, type ReactNode } from "react";

import { ApiError, setUnauthenticatedHandler } from "../api/client";
import { api } from "../api/endpoints";
import { keys } from "../api/queries";
import type { Me } from "../api/types";
import { ErrorState } from "../components/common";
import { LoginPage } from "./LoginPage";

const MeContext = createContext<Me | null>(null);

export function useMe(): Me {
  const me = useContext(MeContext);
  if (!me) throw new Error("useMe outside of <RequireLogin>");
  return me;
}

/** Whether the signed-in user holds a permission (in any scope; the API decides per resource). */
export function useCan(): (permission: string) => boolean {
  const me = useContext(MeContext);
  return (permission) => !me || me.grants.some((g) => g.permission === permission);
}

export function RequireLogin(props: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const me = useQuery({ queryKey: keys.me, queryFn: api.auth.me, retry: false, staleTime: 5 * 60_000 });

  useEffect(() => {
    setUnauthenticatedHandler(() => queryClient.setQueryData(keys.me, null));
    return () => setUnauthenticatedHandler(null);
  }, [queryClient]);

  if (me.isPending) {
    return (
      <Center h="100vh">
        <Loader aria-label="Loading" />
      </Center>
    );
  }
  const signedOut = me.data === null || (me.error instanceof ApiError && me.error.status === 401);
  if (signedOut) return <LoginPage />;
  if (me.error) {
    return (
      <Center h="100vh" p="xl">
        <ErrorState error={me.error} onRetry={() => me.refetch()} />
      </Center>
    );
  }
  return <MeContext.Provider value={me.data}>{props.children}</MeContext.Provider>;
}
