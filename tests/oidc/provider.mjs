// A real authorization server for esignsp's end-to-end tests: oidc-provider configured for
// the client credentials grant with resource indicators.
//
//   node provider.mjs <port> <jwt|opaque> <private JWK Set file>
//
// Clients: `relying-app` / `relying-secret` and `signing-app` / `signing-secret` obtain
// tokens for resource `urn:esignsp`; `esignsp` / `esignsp-secret` introspects them.
import fs from 'node:fs';
import Provider from 'oidc-provider';

const [port, format, jwksFile] = process.argv.slice(2);
const jwks = JSON.parse(fs.readFileSync(jwksFile, 'utf8'));
const scope = 'urn:safelayer:eidas:sign:process:document';
const client = (id, secret) => ({
  client_id: id,
  client_secret: secret,
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: `openid ${scope}`,
  id_token_signed_response_alg: jwks.keys[0].alg,
});

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [client('relying-app', 'relying-secret'), client('signing-app', 'signing-secret'), client('esignsp', 'esignsp-secret')],
  jwks,
  scopes: ['openid', scope],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:esignsp',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope,
        audience: 'esignsp',
        accessTokenTTL: 600,
        accessTokenFormat: format,
        jwt: { sign: { alg: jwks.keys[0].alg } },
      }),
    },
  },
});
provider.listen(Number(port), '127.0.0.1', () => console.log(`listening ${port}`));
