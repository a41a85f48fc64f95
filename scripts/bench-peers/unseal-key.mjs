// Exports Latchkey's current signing key as a private JWK, so the peer signs with the
// very key (and kid) Latchkey signs with (scripts/bench --peers).
//
// Latchkey keeps the key in `signing_keys.private_key` as PKCS#8 DER sealed with
// AES-256-GCM (src/oidc/keys.rs): base64 of nonce (12 bytes) || ciphertext || tag
// (16 bytes), the kid as associated data, under HMAC-SHA256(jwt_secret, "latchkey
// signing-key encryption v1").
//
// Usage: LATCHKEY_JWT_SECRET=... node unseal-key.mjs KID SEALED   (prints the JWK)

import { createDecipheriv, createHmac, createPrivateKey } from 'node:crypto';

const [kid, sealed] = process.argv.slice(2);
const secret = process.env.LATCHKEY_JWT_SECRET;
if (!kid || !sealed || !secret) {
  console.error('usage: LATCHKEY_JWT_SECRET=... node unseal-key.mjs KID SEALED');
  process.exit(2);
}
const key = createHmac('sha256', secret).update('latchkey signing-key encryption v1').digest();
const bytes = Buffer.from(sealed, 'base64');
const nonce = bytes.subarray(0, 12);
const tag = bytes.subarray(bytes.length - 16);
const body = bytes.subarray(12, bytes.length - 16);
const decipher = createDecipheriv('aes-256-gcm', key, nonce);
decipher.setAAD(Buffer.from(kid));
decipher.setAuthTag(tag);
const der = Buffer.concat([decipher.update(body), decipher.final()]);
const jwk = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
console.log(JSON.stringify({ ...jwk, kid, alg: 'RS256', use: 'sig' }));
