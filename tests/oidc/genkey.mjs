// Writes a private JWK Set with one signing key: node genkey.mjs <file> <kid> [ES256|RS256|EdDSA]
import crypto from 'node:crypto';
import fs from 'node:fs';

const [file, kid, alg = 'ES256'] = process.argv.slice(2);
const pair = alg === 'RS256'
  ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
  : alg === 'EdDSA'
    ? crypto.generateKeyPairSync('ed25519')
    : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...pair.privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
fs.writeFileSync(file, JSON.stringify({ keys: [jwk] }));
