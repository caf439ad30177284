// The GraphiQL page of customer-graph, bundled by scripts/build-graphiql.mjs into
// customer_graph/static/graphiql/. The service serves it itself: no CDN, works offline.
import { useSchemaStore } from "@graphiql/react";
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import "graphiql/style.css";
import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";

// The server writes its settings into a JSON element, so the page needs no inline script
// and runs under a strict Content-Security-Policy.
const config = JSON.parse(document.getElementById("graphiql-config").textContent);
const endpoint = new URL(config.endpoint, window.location.href);
const subscriptionUrl = new URL(endpoint);
subscriptionUrl.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";

// Share links keep the editors in the URL: ?q=…&variables=…&headers=… (not `query`, which
// would make the GET a GraphQL request).
const params = new URLSearchParams(window.location.search);

const fetcher = createGraphiQLFetcher({
  url: endpoint.href,
  subscriptionUrl: subscriptionUrl.href,
  enableIncrementalDelivery: false,
  headers: { accept: "application/graphql-response+json, application/json" },
});

function updateUrl(key, value) {
  const next = new URLSearchParams(window.location.search);
  if (value) next.set(key, value);
  else next.delete(key);
  const search = next.toString();
  window.history.replaceState(null, "", search ? `?${search}` : window.location.pathname);
}

// The schema is fetched once at load. Without an API key that fails (401); when the user then
// types a key into the Headers tab, fetch it again so the Docs and autocompletion appear.
function IntrospectOnNewHeaders({ headers }) {
  const fetchError = useSchemaStore((state) => state.fetchError);
  const introspect = useSchemaStore((state) => state.introspect);
  useEffect(() => {
    if (!fetchError) return undefined;
    const timer = setTimeout(introspect, 500);
    return () => clearTimeout(timer);
  }, [headers]); // only an edit of the headers triggers it, not the failure itself
  return null;
}

function App() {
  const [headers, setHeaders] = useState(params.get("headers") ?? "");
  return (
    <GraphiQL
      fetcher={fetcher}
      defaultQuery={config.defaultQuery}
      query={params.get("q") ?? undefined}
      variables={params.get("variables") ?? undefined}
      headers={params.get("headers") ?? undefined}
      onEditQuery={(value) => updateUrl("q", value)}
      onEditVariables={(value) => updateUrl("variables", value)}
      onEditHeaders={setHeaders}
      defaultEditorToolsVisibility="headers"
      isHeadersEditorEnabled
      shouldPersistHeaders={false}
      inputValueDeprecation
    >
      <GraphiQL.Footer>
        <IntrospectOnNewHeaders headers={headers} />
      </GraphiQL.Footer>
    </GraphiQL>
  );
}

createRoot(document.getElementById("graphiql")).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
