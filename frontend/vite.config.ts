import { fileURLToPath } from "node:url";

import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The built studio ships inside the Python package; `corral serve` serves it.
const outDir = fileURLToPath(new URL("../src/corral/api/static", import.meta.url));

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir,
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      output: {
        manualChunks: {
          react: ["react", "react-dom", "react-router-dom"],
          mantine: ["@mantine/core", "@mantine/hooks", "@mantine/form", "@mantine/notifications"],
          charts: ["recharts", "@mantine/charts"],
          flow: ["@xyflow/react"],
        },
      },
    },
  },
  server: {
    // `npm run dev` next to `corral serve` on its default port.
    proxy: { "/api": process.env.CORRAL_API ?? "http://127.0.0.1:8000" },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
});
