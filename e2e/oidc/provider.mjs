// A real OpenID provider (npm oidc-provider) for the server's oidc tests.
//
//   node e2e/oidc/provider.mjs PORT STATE_DIR
//
// Issuer http://127.0.0.1:PORT; clients `writer`, `reader`, `admin` and `nobody` (secret:
// "<id>-secret") get JWT access tokens for the audience `model-registry` by client credentials,
// with a `groups` claim of ml-engineers, ml-readers, ml-admins and none respectively.
// The signing keys are RSA keys made at start; each one's PEM pair is written to STATE_DIR
// (<kid>.key.pem, <kid>.pub.pem) and the kid in use to STATE_DIR/kid, so the tests can forge
// tokens the provider would never issue. POST /rotate makes a new key the signing one (the old
// one stays published, as providers do during a rotation) and answers its kid.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import Provider from 'oidc-provider';

const [port, stateDir] = process.argv.slice(2);
if (!port || !stateDir) {
  console.error('usage: node provider.mjs PORT STATE_DIR');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const AUDIENCE = 'model-registry';
const GROUPS = { writer: ['ml-engineers'], reader: ['ml-readers'], admin: ['ml-admins'] };

function newKey() {
  const kid = randomUUID();
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(path.join(stateDir, `${kid}.key.pem`), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(path.join(stateDir, `${kid}.pub.pem`), publicKey.export({ type: 'spki', format: 'pem' }));
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
}

function provider(keys) {
  const clients = ['writer', 'reader', 'admin', 'nobody'].map((id) => ({
    client_id: id,
    client_secret: `${id}-secret`,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
  }));
  return new Provider(issuer, {
    clients,
    jwks: { keys },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:model-registry',
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'api',
          audience: AUDIENCE,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: (ctx, token) => (GROUPS[token.clientId] ? { groups: GROUPS[token.clientId] } : undefined),
  });
}

let keys = [newKey()];
let current = provider(keys).callback();
writeFileSync(path.join(stateDir, 'kid'), keys[0].kid);

http
  .createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/rotate') {
      keys = [newKey(), keys[0]];
      current = provider(keys).callback();
      writeFileSync(path.join(stateDir, 'kid'), keys[0].kid);
      res.end(keys[0].kid);
      return;
    }
    current(req, res);
  })
  .listen(Number(port), '127.0.0.1', () => console.log(`oidc provider listening on ${issuer}`));
