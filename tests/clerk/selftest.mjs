// Self-test for decide.mjs: signs tokens with a fresh RSA-2048 key, runs decide.mjs on them
// and compares with the decisions @clerk/backend 3.25.0 is known to make.
//   node selftest.mjs        (exit 0 = all as expected)
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const pem = publicKey.export({ type: 'spki', format: 'pem' });
const b64u = (b) => Buffer.from(b).toString('base64url');
const J = (o) => b64u(JSON.stringify(o));
function sign(header, payload, hash = 'sha256') {
  const h = J(header), p = J(payload);
  return `${h}.${p}.${b64u(crypto.sign(hash, Buffer.from(`${h}.${p}`), privateKey))}`;
}

const NOW_S = 1767225600; // 2026-01-01T00:00:00Z
const now_ms = NOW_S * 1000; // a whole second, so the exp boundary is exact
const fapi = 'clerk.example.com';
const H = { alg: 'RS256', typ: 'JWT', kid: 'ins_test' };
const AZP = 'https://app.example.com';
const base = { sub: 'user_1', sid: 'sess_1', iss: `https://${fapi}`, azp: AZP, iat: NOW_S - 10, nbf: NOW_S - 10, exp: NOW_S + 60, v: 2 };
const tok = (claims = {}, header = {}) => sign({ ...H, ...header }, { ...base, ...claims });
const valid = tok();
const AP = { authorizedParties: [AZP] };

// [id, token, options, expected session decision, expected verify decision]; null = skip that mode.
const OK = 'ok';
const rows = [
  ['valid', valid, {}, OK, OK],
  ['valid-with-parties', valid, AP, OK, OK],
  ['expired', tok({ exp: NOW_S - 100 }), {}, 'signed-out:session-token-expired-refresh-non-eligible-no-refresh-cookie', 'token-expired'],
  ['exp-now-minus-5-boundary', tok({ exp: NOW_S - 5 }), {}, 'signed-out:session-token-expired-refresh-non-eligible-no-refresh-cookie', 'token-expired'],
  ['exp-now-minus-4', tok({ exp: NOW_S - 4 }), {}, OK, OK],
  ['exp-now-minus-5-fraction', tok({ exp: NOW_S - 5 + 0.99 }), {}, 'signed-out:session-token-expired-refresh-non-eligible-no-refresh-cookie', 'token-expired'],
  ['exp-now-minus-5-skew-5001', tok({ exp: NOW_S - 5 }), { clockSkewInMs: 5001 }, OK, OK],
  ['exp-now-minus-3-skew-0', tok({ exp: NOW_S - 3 }), { clockSkewInMs: 0 }, 'signed-out:session-token-expired-refresh-non-eligible-no-refresh-cookie', 'token-expired'],
  ['exp-now-plus-5-skew-neg-10000', tok({ exp: NOW_S + 5 }), { clockSkewInMs: -10000 }, 'signed-out:session-token-expired-refresh-non-eligible-no-refresh-cookie', 'token-expired'],
  ['exp-missing', tok({ exp: undefined }), {}, 'signed-out:token-verification-failed', 'token-verification-failed'],
  ['nbf-future', tok({ nbf: NOW_S + 60 }), {}, 'signed-out:session-token-nbf', 'token-not-active-yet'],
  ['nbf-now-plus-5', tok({ nbf: NOW_S + 5 }), {}, OK, OK],
  ['nbf-now-plus-6', tok({ nbf: NOW_S + 6 }), {}, 'signed-out:session-token-nbf', 'token-not-active-yet'],
  ['iat-future', tok({ iat: NOW_S + 60 }), {}, 'signed-out:session-token-iat-in-the-future', 'token-iat-in-the-future'],
  ['azp-wrong', tok({ azp: 'https://evil.example.com' }), AP, 'signed-out:token-invalid-authorized-parties', 'token-invalid-authorized-parties'],
  ['azp-trailing-slash', valid, { authorizedParties: [AZP + '/'] }, 'signed-out:token-invalid-authorized-parties', 'token-invalid-authorized-parties'],
  ['azp-missing-with-parties', tok({ azp: undefined }), AP, 'signed-out:token-invalid-authorized-parties', 'token-invalid-authorized-parties'],
  ['azp-missing-no-parties', tok({ azp: undefined }), {}, OK, OK],
  ['azp-any-empty-parties', tok({ azp: 'https://evil.example.com' }), { authorizedParties: [] }, OK, OK],
  ['aud-mismatch', tok({ aud: 'a' }), { audience: 'b' }, 'signed-out:token-verification-failed', 'token-verification-failed'],
  ['aud-array-match', tok({ aud: ['x', 'b'] }), { audience: ['b'] }, OK, OK],
  ['aud-missing-audience-set', valid, { audience: 'b' }, OK, OK],
  // `issuer` passes through authenticateRequest into verifyToken.
  ['iss-match', valid, { issuer: `https://${fapi}` }, OK, OK],
  ['iss-mismatch', valid, { issuer: 'https://other.example.com' }, 'signed-out:token-invalid-issuer', 'token-invalid-issuer'],
  ['iss-number', tok({ iss: 5 }), { issuer: [`https://${fapi}`] }, 'signed-out:token-invalid-issuer', 'token-invalid-issuer'],
  ['cat-222-template', tok({}, { cat: 'cl_B7d4PD222AAA' }), {}, 'signed-out:token-type-mismatch', OK],
  ['cat-333-m2m', tok({}, { cat: 'cl_B7d4PD333AAA' }), {}, 'signed-out:token-type-mismatch', 'token-invalid'],
  ['cat-111', tok({}, { cat: 'cl_B7d4PD111AAA' }), {}, OK, OK],
  ['cat-III', tok({}, { cat: 'cl_I7d4PD111III' }), {}, OK, OK],
  ['cat-junk', tok({}, { cat: 'junk' }), {}, 'signed-out:token-type-mismatch', OK],
  ['sub-mch-machine-jwt', tok({ sub: 'mch_1' }), {}, 'signed-out:token-type-mismatch', OK],
  ['typ-at+jwt', tok({}, { typ: 'at+jwt' }), {}, 'signed-out:token-type-mismatch', 'token-invalid'],
  ['typ-lowercase-jwt', tok({}, { typ: 'jwt' }), {}, 'signed-out:token-invalid', 'token-invalid'],
  ['typ-absent', tok({}, { typ: undefined }), {}, OK, OK],
  ['sts-pending', tok({ sts: 'pending' }), {}, 'pending', OK],
  ['sts-active', tok({ sts: 'active' }), {}, OK, OK],
  ['alg-rs384-with-jwtkey', sign({ ...H, alg: 'RS384' }, base, 'sha384'), {}, 'signed-out:token-verification-failed', 'token-verification-failed'],
  ['alg-none', `${J({ alg: 'none' })}.${J(base)}.`, {}, 'signed-out:token-invalid-algorithm', 'token-invalid-algorithm'],
  ['bad-signature', valid.slice(0, -6) + (valid.slice(-6, -5) === 'A' ? 'B' : 'A') + valid.slice(-5), {}, 'signed-out:token-invalid-signature', 'token-invalid-signature'],
  ['garbage', 'abc', {}, 'signed-out:token-invalid', 'token-invalid'],
  ['opaque-ak-prefix', 'ak_abc', {}, 'signed-out:token-invalid', 'token-invalid'],
  ['empty-token', '', {}, 'signed-out:token-invalid', 'token-invalid'],
  // Headers strip surrounding whitespace: the header carries the valid token, verifyToken does not.
  ['trailing-space', valid + ' ', {}, OK, 'token-invalid'],
  ['newline-in-token', valid + '\nx', {}, 'unsendable:TypeError', 'token-invalid'],
  ['null-header', `${b64u('null')}.${J(base)}.${b64u('x')}`, {}, 'signed-out:unexpected-error', 'non-tve:TypeError'],
  // toAuth() throws "Invalid claim element (missing colon)" while the request state is signed in.
  ['fea-missing-colon', tok({ fea: 'dashboard', o: { id: 'org_1', rol: 'admin', per: 'read', fpm: '1' } }), {}, 'non-tve:Error', OK],
];

const cases = [];
const expected = new Map();
for (const [id, token, options, sess, ver] of rows) {
  if (sess !== null) { cases.push({ id: `${id}/session`, token, mode: 'session', options: { authorizedParties: null, audience: null, issuer: null, clockSkewInMs: null, ...options } }); expected.set(`${id}/session`, sess); }
  if (ver !== null) { cases.push({ id: `${id}/verify`, token, mode: 'verify', options }); expected.set(`${id}/verify`, ver); }
}
const corpus = {
  now_ms,
  public_key_pem: pem,
  publishable_key: 'pk_live_' + Buffer.from(`${fapi}$`).toString('base64'),
  secret_key: 'sk_test_selftest',
  cases,
};
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clerk-selftest-'));
const file = path.join(dir, 'corpus.json');
fs.writeFileSync(file, JSON.stringify(corpus));

const run = spawnSync(process.execPath, [path.join(here, 'decide.mjs'), file], { encoding: 'utf8' });
let failures = 0;
const fail = (m) => { failures++; console.log('FAIL ' + m); };
if (run.status !== 0) fail(`decide.mjs exit ${run.status}; stderr:\n${run.stderr}`);
if (run.stderr.trim()) console.log('decide.mjs stderr:\n' + run.stderr.trim());
const lines = run.stdout.split('\n').filter(Boolean);
if (lines.length !== cases.length) fail(`expected ${cases.length} lines, got ${lines.length}`);
lines.forEach((line, i) => {
  const r = JSON.parse(line);
  const id = cases[i]?.id;
  if (r.id !== id) return fail(`line ${i}: id ${r.id} != ${id}`);
  if (JSON.stringify(Object.keys(r)) !== '["id","ok","reason"]') fail(`${id}: keys ${Object.keys(r)}`);
  const want = expected.get(id);
  const got = r.reason;
  if (got !== want || r.ok !== (want === OK)) fail(`${id}: got ok=${r.ok} reason=${got}, want ${want}`);
  else console.log(`ok   ${id.padEnd(42)} ${got}`);
});

// Determinism: the same corpus gives byte-identical output.
const again = spawnSync(process.execPath, [path.join(here, 'decide.mjs'), file], { encoding: 'utf8' });
if (again.stdout !== run.stdout) fail('second run differs');

// Malformed corpora exit 2.
for (const [name, body] of [['not-json', '{'], ['no-cases', JSON.stringify({ ...corpus, cases: undefined })], ['bad-mode', JSON.stringify({ ...corpus, cases: [{ id: 'x', token: 't', mode: 'cookie' }] })], ['typo-option', JSON.stringify({ ...corpus, cases: [{ id: 'x', token: 't', mode: 'verify', options: { clockSkewMs: 1 } }] })]]) {
  fs.writeFileSync(file, body);
  const r = spawnSync(process.execPath, [path.join(here, 'decide.mjs'), file], { encoding: 'utf8' });
  if (r.status !== 2 || r.stdout !== '') fail(`malformed corpus ${name}: exit ${r.status}, stdout ${JSON.stringify(r.stdout)}`);
  else console.log(`ok   malformed corpus ${name} -> exit 2 (${r.stderr.trim()})`);
}
const missing = spawnSync(process.execPath, [path.join(here, 'decide.mjs'), path.join(dir, 'nope.json')], { encoding: 'utf8' });
if (missing.status !== 2) fail(`missing corpus: exit ${missing.status}`);
fs.rmSync(dir, { recursive: true, force: true });

console.log(failures ? `${failures} FAILURE(S)` : `all ${cases.length} cases as expected`);
process.exit(failures ? 1 : 0);
