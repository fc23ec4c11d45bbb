// A throw-away OpenID Connect provider for the tests (service/tests/suite/web_oidc.rs):
// node-oidc-provider (npm `oidc-provider`, by panva), pinned in package-lock.json and
// installed by scripts/install-deps. Started by the harness (tests/src/oidc.rs) as
//
//   node oidc-provider.mjs CONFIG.json PORT
//
// on 127.0.0.1:PORT, issuer http://127.0.0.1:PORT. CONFIG.json:
//
//   { "clients":  [{ "client_id": "...", "client_secret": "...", "redirect_uris": ["..."] }],
//     "accounts": { "<login>": { "<claim>": <value>, ... }, ... } }
//
// The provider's own development login form (devInteractions) signs anybody in whose
// login name is in "accounts" (the password field is not checked: this is a test
// provider). Consent is granted without a page, as for a first-party client. The ID
// token is signed with an RSA key made at start (RS256) and carries the claims of the
// scopes asked for (conformIdTokenClaims off), so the relying party reads them from the
// signed token. Test use only: never run this as a real identity provider.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const [configPath, portArg] = process.argv.slice(2);
if (!configPath || !portArg) {
  console.error('usage: node oidc-provider.mjs CONFIG.json PORT');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const port = Number(portArg);
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `test-${randomBytes(4).toString('hex')}`,
  use: 'sig',
  alg: 'RS256',
};

// Each start-up stage is logged, so that a start that stalls on a loaded machine says where.
console.log('oidc-provider: modules loaded, signing key made');

const accountClaims = ['preferred_username', 'name', 'groups', 'fiktiv_units'];

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  })),
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    groups: ['groups'],
    units: ['fiktiv_units'],
  },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    const claims = config.accounts[id];
    if (!claims) return undefined;
    return {
      accountId: id,
      async claims() {
        return { ...claims, sub: id };
      },
    };
  },
  // First-party client: consent is granted without a page.
  async loadExistingGrant(ctx) {
    const { Grant } = ctx.oidc.provider;
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    let grant = grantId ? await Grant.find(grantId) : undefined;
    if (!grant) {
      grant = new Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
    }
    grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
    grant.addOIDCClaims(accountClaims);
    await grant.save();
    return grant;
  },
});

for (const event of ['server_error', 'authorization.error', 'grant.error', 'interaction.error']) {
  provider.on(event, (ctx, err) => {
    console.error(`oidc-provider ${event}: ${err?.name}: ${err?.message} ${err?.error_description ?? ''}`);
  });
}

console.log('oidc-provider: provider configured');
const server = createServer(provider.callback());
server.on('error', (err) => {
  console.error(`oidc-provider: ${err.code ?? ''} ${err.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
