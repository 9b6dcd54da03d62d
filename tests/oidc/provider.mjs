// A real authorization server for esignsp's end-to-end tests: oidc-provider configured for
// the client credentials grant with resource indicators.
//
//   node provider.mjs <port> <jwt|opaque> <private JWK Set file> [<signing page redirect URI>]
//
// Clients: `relying-app` / `relying-secret` and `signing-app` / `signing-secret` obtain
// tokens for resource `urn:esignsp`; `esignsp` / `esignsp-secret` introspects them.
//
// With a redirect URI, signers log in to esignsp's signing page (authorization code flow with
// PKCE) as client `signing-page` / `signing-page-secret` (client_secret_basic) or the public
// client `signing-page-public` (no secret, PKCE only), through oidc-provider's development
// login and consent forms: any login and password is accepted, the login is the `sub`, and
// accounts have a name and e-mail (login `ada`: Ada Lovelace, ada@example.test). As OpenID
// Connect Core §5.4 says for the code flow, the profile and e-mail claims are given at the
// UserInfo endpoint, not in the ID token.
import fs from 'node:fs';
import Provider from 'oidc-provider';

const [port, format, jwksFile, redirectUri] = process.argv.slice(2);
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

const signingPage = (id, secret) => ({
  client_id: id,
  ...(secret ? { client_secret: secret } : {}),
  grant_types: ['authorization_code'],
  redirect_uris: [redirectUri],
  response_types: ['code'],
  token_endpoint_auth_method: secret ? 'client_secret_basic' : 'none',
  id_token_signed_response_alg: jwks.keys[0].alg,
});
const names = { ada: 'Ada Lovelace' };
const clients = [client('relying-app', 'relying-secret'), client('signing-app', 'signing-secret'), client('esignsp', 'esignsp-secret')];
if (redirectUri) {
  clients.push(signingPage('signing-page', 'signing-page-secret'), signingPage('signing-page-public'));
}

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients,
  jwks,
  scopes: ['openid', 'profile', 'email', scope],
  claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, name: names[id] ?? `Signer ${id}`, email: `${id}@example.test`, email_verified: true }),
  }),
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: Boolean(redirectUri) },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    resourceIndicators: {
      enabled: true,
      // The signing page's tokens are for the UserInfo endpoint, not for esignsp's API.
      defaultResource: (ctx, client) => (client.clientId.startsWith('signing-page') ? undefined : 'urn:esignsp'),
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
