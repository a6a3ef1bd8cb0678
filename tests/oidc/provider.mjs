// A real OpenID Connect provider (node's oidc-provider) on loopback for Driftline's SSO tests.
//
//   node tests/oidc/provider.mjs CONFIG.json
//
// CONFIG: {"jwks": {"keys": [<private JWK>]}, "clients": [<client metadata>],
//          "users": {"<login>": {"password": "...", "otp": "123456", "groups": [...],
//                               "email": "...", "name": "..."}}}
// It listens on 127.0.0.1 on a free port and prints one line of JSON, {"issuer": "..."},
// once it accepts connections. The users are read from CONFIG again at every login. The
// login page is a plain HTML form (login, password, and an optional one-time code): a
// correct code makes the login multi-factor, so the ID token says amr ["pwd", "otp"] and
// acr "urn:driftline:test:mfa" (else ["pwd"] and "urn:driftline:test:pwd"). Consent is granted without a page (a first-party client).
import http from 'node:http';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
// the users are read again at every login, so a test can change a user's groups
const users = () => JSON.parse(readFileSync(process.argv[2], 'utf8')).users;

function account(id) {
  const user = users()[id];
  if (!user) return undefined;
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        preferred_username: user.username ?? id,
        name: user.name ?? id,
        email: user.email ?? `${id}@example.test`,
        email_verified: true,
        groups: user.groups ?? [],
      };
    },
  };
}

function page(res, status, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(`<!doctype html><html><body>${body}</body></html>`);
}

function loginForm(uid, error) {
  return `${error ? `<p class="error">${error}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
  <input name="login"><input name="password" type="password"><input name="otp">
  <button type="submit">Sign in</button>
</form>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

let provider;

async function interaction(req, res) {
  const url = new URL(req.url, provider.issuer);
  const [, , uid, action] = url.pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return page(res, 400, '<p>interaction mismatch</p>');
  if (req.method === 'GET') {
    if (details.prompt.name !== 'login') return page(res, 400, `<p>unexpected prompt ${details.prompt.name}</p>`);
    return page(res, 200, loginForm(uid));
  }
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const login = form.get('login') ?? '';
    const user = users()[login];
    if (!user || user.password !== form.get('password')) {
      return page(res, 200, loginForm(uid, 'invalid login or password'));
    }
    const otp = form.get('otp') ?? '';
    if (otp && otp !== user.otp) return page(res, 200, loginForm(uid, 'invalid one-time code'));
    const mfa = Boolean(otp);
    return provider.interactionFinished(req, res, {
      login: {
        accountId: login,
        amr: mfa ? ['pwd', 'otp'] : ['pwd'],
        acr: mfa ? 'urn:driftline:test:mfa' : 'urn:driftline:test:pwd',
        remember: false,
      },
    }, { mergeWithLastSubmission: false });
  }
  return page(res, 404, '<p>no such interaction route</p>');
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => page(res, 400, `<p>${String(err.message)}</p>`));
  } else {
    provider.callback()(req, res);
  }
});

server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = new Provider(issuer, {
    clients: config.clients,
    jwks: config.jwks,
    cookies: { keys: ['driftline-test-oidc-cookie-key'] },
    claims: {
      openid: ['sub', 'acr', 'amr'],
      profile: ['preferred_username', 'name'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    scopes: ['openid', 'profile', 'email', 'groups'],
    acrValues: ['urn:driftline:test:pwd', 'urn:driftline:test:mfa'],
    // the ID token from the token endpoint carries the scopes' claims (groups), as
    // Keycloak, Okta and Entra ID do once their group claim is added to the ID token
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    findAccount: (_ctx, id) => account(id),
    interactions: { url: (_ctx, i) => `/interaction/${i.uid}` },
    // a first-party client: consent is given without a page
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid profile email groups');
      await grant.save();
      return grant;
    },
    ttl: { IdToken: config.id_token_ttl_s ?? 300, AccessToken: 300, Interaction: 600, Session: 600, Grant: 600 },
  });
  provider.proxy = false;
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
