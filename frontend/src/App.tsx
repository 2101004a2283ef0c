import { Navigate, Outlet, createBrowserRouter } from "react-router-dom";

import { RequireLogin } from "./auth/auth";
import { Layout } from "./components/Layout";
import { AudienceBuilderPage } from "./pages/audiences/AudienceBuilderPage";
import { AudiencesPage } from "./pages/audiences/AudiencesPage";
import { DestinationsPage } from "./pages/destinations/DestinationsPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { SchemaPage } from "./pages/schema/SchemaPage";
import { SettingsPage } from "./pages/settings/SettingsPage";
import { SourcesPage } from "./pages/sources/SourcesPage";
import { SyncEditorPage } from "./pages/syncs/SyncEditorPage";
import { SyncPage } from "./pages/syncs/SyncPage";
import { SyncsPage } from "./pages/syncs/SyncsPage";

function Root() {
  return (
    <RequireLogin>
      <Outlet />
    </RequireLogin>
  );
}

// A data router, so the audience builder can ask before leaving unsaved changes.
export const router = createBrowserRouter([
  {
    element: <Root />,
    children: [
      {
        element: <Layout />,
        children: [
          { index: true, element: <Navigate to="/audiences" replace /> },
          { path: "audiences", element: <AudiencesPage /> },
          { path: "audiences/new", element: <AudienceBuilderPage /> },
          { path: "audiences/:name", element: <AudienceBuilderPage /> },
          { path: "syncs", element: <SyncsPage /> },
          { path: "syncs/new", element: <SyncEditorPage /> },
          { path: "syncs/:name", element: <SyncPage /> },
          { path: "syncs/:name/edit", element: <SyncEditorPage /> },
          { path: "destinations", element: <DestinationsPage /> },
          { path: "schema", element: <SchemaPage /> },
          { path: "sources", element: <SourcesPage /> },
          { path: "settings", element: <Navigate to="/settings/users" replace /> },
          { path: "settings/:tab", element: <SettingsPage /> },
          { path: "*", element: <NotFoundPage /> },
        ],
      },
    ],
  },
]);
