// The playground's entry: GraphiQL with the HTTP and websocket transports of
// Parley's /graphql. internal/playground's page (page.html) loads the bundle
// that build.mjs makes of this file; the endpoint's path comes from the
// page's data-endpoint attribute, so that the page carries no inline script.
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { setNonce } from 'get-nonce';
import 'graphiql/style.css';
import './page.css';

// The page's Content-Security-Policy allows style elements only with its
// nonce, which the page puts on its stylesheet link; GraphiQL's dialogs add
// a style element through react-style-singleton, which asks get-nonce.
const link = document.querySelector('link[rel=stylesheet][nonce]');
if (link && link.nonce) setNonce(link.nonce);

const root = document.getElementById('graphiql');
const path = root.dataset.endpoint || '/graphql';
const ws = location.protocol === 'https:' ? 'wss:' : 'ws:';

// Queries and mutations go over HTTP with the headers editor's headers.
// Subscriptions go over graphql-ws (graphql-transport-ws); toolkit sends the
// headers editor's headers as the connection_init payload, and the server
// takes the token from its "Authorization: Bearer" entry.
const fetcher = createGraphiQLFetcher({
  url: location.origin + path,
  subscriptionUrl: ws + '//' + location.host + path,
});

const defaultQuery = `# Log in, then put the token in the Headers tab below as
#   {"Authorization": "Bearer <token>"}
mutation Login {
  login(input: {email: "owner@demo.parley.chat", password: "parley-demo"}) {
    token
  }
}
`;

createRoot(root).render(createElement(GraphiQL, {
  fetcher,
  defaultQuery,
  defaultHeaders: '{\n  "Authorization": "Bearer "\n}',
  isHeadersEditorEnabled: true,
  shouldPersistHeaders: true,
  inputValueDeprecation: true,
}));
