// node-oidc-provider as the yardstick for bench/side_by_side.py: in-memory adapter (the library's default), one
// confidential client like idp's bench client, RS256. Not shipped; listens on 127.0.0.1 only.
//
//   node provider.js PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
//
// Sign-in is not what is compared (idp's password sign-in has no counterpart here): /interaction/:uid signs in the
// one bench account and grants `openid email profile offline_access` without a page, so the bench can get codes,
// access tokens and refresh tokens through the provider's real authorization and token endpoints.

import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
if (!port || !clientId || !clientSecret || !redirectUri) {
  console.error('usage: node provider.js PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const ACCOUNT = 'bench-user';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: ['bench-only-cookie-key-not-a-secret-0123456789'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
  },
  // idp rotates every refresh token (INTERFACE §3); make node do the same.
  rotateRefreshToken: true,
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, email: `${sub}@bench.invalid`, email_verified: true, name: 'Bench User' }),
  }),
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { AccessToken: 3600, RefreshToken: 14 * 24 * 3600 },
});
provider.proxy = false;

// Silence per-request error logging on purpose-made bad requests; server errors are still printed.
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId: ACCOUNT } }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  grant.addOIDCScope('openid email profile offline_access');
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

const callback = provider.callback();
http
  .createServer((req, res) => {
    if (req.url.startsWith('/interaction/')) {
      interaction(req, res).catch((err) => {
        console.error('interaction', err);
        res.statusCode = 500;
        res.end();
      });
      return;
    }
    callback(req, res);
  })
  .listen(Number(port), '127.0.0.1', () => {
    console.log(JSON.stringify({ ready: issuer, node: process.version }));
  });
