// Bundles GraphiQL (React, the editor, the fetcher, graphql-ws for subscriptions) into
// customer_graph/static/graphiql/, which the service serves itself. The bundle is committed so
// a pip install needs no Node; `--check` rebuilds into a temporary folder and fails if the
// committed files differ (run by `make test`).
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const target = join(root, "customer_graph", "static", "graphiql");
const check = process.argv.includes("--check");

async function build(outdir) {
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: { graphiql: join(root, "scripts", "graphiql", "main.jsx") },
    outdir,
    bundle: true,
    minify: true,
    format: "iife",
    target: ["es2020", "chrome100", "firefox100", "safari15"],
    jsx: "automatic",
    define: { "process.env.NODE_ENV": '"production"' },
    legalComments: "external",
    logLevel: "warning",
  });
}

async function listing(dir) {
  const names = (await readdir(dir)).filter((name) => !name.startsWith("."));
  return names.sort();
}

if (check) {
  const scratch = await mkdtemp(join(tmpdir(), "graphiql-"));
  try {
    await build(scratch);
    const fresh = await listing(scratch);
    const committed = await listing(target).catch(() => []);
    const stale = fresh.filter((name) => !committed.includes(name));
    for (const name of fresh) {
      if (stale.includes(name)) continue;
      const [a, b] = await Promise.all([
        readFile(join(scratch, name)),
        readFile(join(target, name)),
      ]);
      if (!a.equals(b)) stale.push(name);
    }
    if (stale.length) {
      console.error(`GraphiQL bundle out of date (${stale.join(", ")}): run make graphiql`);
      process.exit(1);
    }
    console.log("GraphiQL bundle up to date");
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
} else {
  await build(target);
  for (const name of await listing(target)) console.log(`built customer_graph/static/graphiql/${name}`);
}
