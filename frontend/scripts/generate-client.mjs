// Regenerates src/api/schema.gen.ts from the API's OpenAPI document.
//
// The document comes from the Python app itself (no server needed), so this needs the
// repository's .venv; the build does not: the generated file is committed.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const frontend = resolve(here, "..");
const repo = resolve(frontend, "..");
const python = join(repo, ".venv", "bin", "python");

if (!existsSync(python)) {
  console.error(`no ${python}: run 'make setup' in ${repo} first`);
  process.exit(1);
}

// The app needs a workspace to start: the demo's when `make demo` made one, else a copy
// of the demo workspace's YAML files (the OpenAPI document does not depend on it).
let workspace = join(repo, "corral-demo");
let scratch = null;
if (!existsSync(join(workspace, "schema.yaml"))) {
  scratch = mkdtempSync(join(tmpdir(), "corral-openapi-"));
  workspace = join(scratch, "workspace");
  cpSync(join(repo, "src", "corral", "demo", "workspace"), workspace, { recursive: true });
}
const program = [
  "import json, sys",
  "from pathlib import Path",
  "from corral.api.app import create_app",
  "print(json.dumps(create_app(Path(sys.argv[1])).openapi(), indent=2))",
].join("; ");
let document;
try {
  document = execFileSync(python, ["-c", program, workspace], { cwd: repo, encoding: "utf8" });
} finally {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}
writeFileSync(join(frontend, "openapi.json"), document);

execFileSync(
  join(frontend, "node_modules", ".bin", "openapi-typescript"),
  ["openapi.json", "--output", "src/api/schema.gen.ts"],
  { cwd: frontend, stdio: "inherit" },
);
