// node oidc-provider (OpenID-certified), configured as the peer Latchkey is measured
// against in scripts/bench --peers: the same RSA-2048 key and kid (read from Latchkey's
// keyring by unseal-key.mjs), the same client id, secret and redirect URI, the same
// endpoint paths, the same token lifetimes (access 900 s, code 60 s, refresh 30 days),
// refresh-token rotation on every use, consent remembered (a grant per user and app),
// an in-memory store without a size cap (memory-adapter.mjs), email in the id_token as
// Latchkey puts it there.
//
// The sign-in and consent screens are the smallest a real deployment has: a form for
// the email and password (checked against a scrypt hash) and a form to allow. They are
// used by the bench's set-up only; the loads never reach them.
//
// Usage: node provider.mjs CONFIG.json   (prints "ready" when listening)
//   CONFIG: { port, issuer, jwk (private RSA JWK with kid), client: { client_id,
//             client_secret, redirect_uri }, accounts: [{ id, email, password }] }

import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import Provider from 'oidc-provider';

import MemoryAdapter, { size } from './memory-adapter.mjs';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

// Accounts: email -> { id, email, salt, hash }, and id -> the same.
const byEmail = new Map();
const byId = new Map();
for (const a of config.accounts) {
  const salt = randomBytes(16);
  const account = { id: a.id, email: a.email, salt, hash: scryptSync(a.password, salt, 32) };
  byEmail.set(a.email, account);
  byId.set(a.id, account);
}

function checkPassword(email, password) {
  const account = byEmail.get(email);
  if (!account || typeof password !== 'string') return undefined;
  const hash = scryptSync(password, account.salt, 32);
  return timingSafeEqual(hash, account.hash) ? account : undefined;
}

const provider = new Provider(config.issuer, {
  adapter: MemoryAdapter,
  clients: [{
    client_id: config.client.client_id,
    client_secret: config.client.client_secret,
    redirect_uris: [config.client.redirect_uri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys: [config.jwk] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'email', 'offline_access'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  conformIdTokenClaims: false,
  findAccount: async (_ctx, id) => {
    const account = byId.get(id);
    if (!account) return undefined;
    return {
      accountId: id,
      claims: async () => ({ sub: id, email: account.email, email_verified: false }),
    };
  },
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  rotateRefreshToken: true,
  routes: {
    authorization: '/oauth2/authorize',
    token: '/oauth2/token',
    userinfo: '/oauth2/userinfo',
    jwks: '/oauth2/jwks',
    revocation: '/oauth2/revoke',
    introspection: '/oauth2/introspect',
  },
  ttl: {
    AccessToken: 900,
    AuthorizationCode: 60,
    IdToken: 900,
    RefreshToken: 30 * 24 * 3600,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
  },
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, title, form) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(`<!doctype html><title>${escape(title)}</title><h1>${escape(title)}</h1>${form}`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16384) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

// GET /interaction/UID: the sign-in or the consent form; POST .../login, .../confirm.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params } = details;
  const path = new URL(req.url, config.issuer).pathname;
  if (req.method === 'GET') {
    if (prompt.name === 'login') {
      return page(res, 200, 'Sign in', `<form method="post" action="/interaction/${uid}/login">`
        + '<input name="email"><input name="password" type="password">'
        + '<button>Sign in</button></form>');
    }
    return page(res, 200, `Allow ${escape(params.client_id)}?`,
      `<form method="post" action="/interaction/${uid}/confirm">`
      + `<p>Scopes: ${escape(params.scope)}</p><button name="decision" value="allow">Allow</button></form>`);
  }
  const form = await readForm(req);
  if (path.endsWith('/login')) {
    const account = checkPassword(form.get('email'), form.get('password'));
    if (!account) return page(res, 400, 'Wrong email or password', '');
    return provider.interactionFinished(req, res, { login: { accountId: account.id } },
      { mergeWithLastSubmission: false });
  }
  const { grantId, session } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  const saved = await grant.save();
  const consent = grantId ? {} : { grantId: saved };
  return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

// PEER_DEBUG=1: why a token request was refused (the answer says only invalid_grant).
if (process.env.PEER_DEBUG) provider.on('grant.error', (_ctx, e) => console.error('grant.error', e.error_detail));
const handle = provider.callback();
const server = createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((e) => page(res, 400, 'Bad request', escape(e.message)));
    return;
  }
  handle(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(config.port, '127.0.0.1', () => console.log('ready'));
process.on('SIGTERM', () => {
  console.log(`stopping; store: ${JSON.stringify(size())}`);
  process.exit(0);
});
