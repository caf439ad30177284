// Runs the graphql-http audit suite (GraphQL-over-HTTP conformance) against a running server
// and prints the results as JSON: [{id, name, status, reason?, response?}], one per audit.
// Usage: node scripts/graphql-http-audit.mjs URL [--token KEY]
// With a token, every audit request carries `Authorization: Bearer KEY`.
import { auditServer } from "graphql-http";

const [url, ...rest] = process.argv.slice(2);
if (!url) {
  console.error("usage: node scripts/graphql-http-audit.mjs URL [--token KEY]");
  process.exit(2);
}
const tokenAt = rest.indexOf("--token");
const token = tokenAt >= 0 ? rest[tokenAt + 1] : process.env.GRAPHQL_AUDIT_TOKEN;

function fetchFn(input, init = {}) {
  if (!token) return fetch(input, init);
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

async function describe(response) {
  if (!response) return undefined;
  const body = await response.text().catch(() => "");
  return {
    status: response.status,
    contentType: response.headers.get("content-type"),
    body: body.slice(0, 500),
  };
}

const results = await auditServer({ url, fetchFn });
const report = [];
for (const result of results) {
  const entry = { id: result.id, name: result.name, status: result.status };
  if (result.status !== "ok") {
    entry.reason = result.reason;
    entry.response = await describe(result.response);
  }
  report.push(entry);
}
console.log(JSON.stringify(report, null, 2));
