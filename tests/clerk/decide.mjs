// Reference token decisions from Clerk's own backend SDK (@clerk/backend, pinned in package.json).
//
//   node decide.mjs CORPUS.json      (or `-` to read the corpus from stdin)
//
// Prints one JSON line per case, in corpus order: {"id":"…","ok":true|false,"reason":"…"}.
// Mode "has" also asks the signed-in auth object `has(case.has)` (plans, features,
// reverification, roles, permissions): ok only when signed in and has() is true.
// Exit 0 when every case was decided, 2 when the corpus cannot be read or is malformed,
// 3 when the SDK tried to reach the network (it never should: jwtKey is always given).
// See README.md for the corpus format and the meaning of `reason`.

import fs from 'node:fs';

function die(msg) {
  process.stderr.write(`decide.mjs: ${msg}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------- corpus

function loadCorpus(arg) {
  if (!arg) die('usage: node decide.mjs CORPUS.json (or - for stdin)');
  let text;
  try {
    text = fs.readFileSync(arg === '-' ? 0 : arg, 'utf8');
  } catch (e) {
    die(`cannot read corpus ${arg}: ${e.message}`);
  }
  let c;
  try {
    c = JSON.parse(text);
  } catch (e) {
    die(`corpus ${arg} is not JSON: ${e.message}`);
  }
  validate(c);
  return c;
}

const isStr = (v) => typeof v === 'string';
const isStrArray = (v) => Array.isArray(v) && v.every(isStr);
const OPTION_KEYS = new Set(['authorizedParties', 'audience', 'issuer', 'clockSkewInMs']);
const CASE_KEYS = new Set(['id', 'token', 'mode', 'options', 'has']);
const HAS_KEYS = new Set(['role', 'permission', 'plan', 'feature', 'reverification']);

function validate(c) {
  if (c === null || typeof c !== 'object' || Array.isArray(c)) die('corpus must be a JSON object');
  if (!Number.isSafeInteger(c.now_ms)) die('now_ms must be an integer (milliseconds since the epoch)');
  if (!isStr(c.public_key_pem) || c.public_key_pem.trim() === '') die('public_key_pem must be a non-empty string');
  // pk_live_ keeps the development-instance (dev-browser / handshake) logic out of the picture.
  if (!isStr(c.publishable_key) || !c.publishable_key.startsWith('pk_live_')) die('publishable_key must be a pk_live_… key');
  const fapi = Buffer.from(c.publishable_key.slice('pk_live_'.length), 'base64').toString('utf8');
  if (!fapi.endsWith('$') || fapi.length < 2) die('publishable_key does not encode "<frontend-api>$"');
  if (!isStr(c.secret_key) || c.secret_key === '') die('secret_key must be a non-empty string');
  if (!Array.isArray(c.cases)) die('cases must be an array');
  c.cases.forEach((k, i) => {
    const where = `cases[${i}]`;
    if (k === null || typeof k !== 'object' || Array.isArray(k)) die(`${where} must be an object`);
    for (const key of Object.keys(k)) if (!CASE_KEYS.has(key)) die(`${where}: unknown key ${JSON.stringify(key)}`);
    if (!isStr(k.id)) die(`${where}.id must be a string`);
    if (!isStr(k.token)) die(`${where} (${k.id}).token must be a string`);
    if (k.mode !== 'session' && k.mode !== 'verify' && k.mode !== 'has') die(`${where} (${k.id}).mode must be "session", "verify" or "has"`);
    if ((k.mode === 'has') !== (k.has !== undefined)) die(`${where} (${k.id}): "has" is given exactly in mode "has"`);
    if (k.mode === 'has') {
      if (k.has === null || typeof k.has !== 'object' || Array.isArray(k.has)) die(`${where} (${k.id}).has must be an object`);
      for (const key of Object.keys(k.has)) if (!HAS_KEYS.has(key)) die(`${where} (${k.id}).has: unknown key ${JSON.stringify(key)}`);
    }
    const o = k.options ?? {};
    if (typeof o !== 'object' || Array.isArray(o)) die(`${where} (${k.id}).options must be an object`);
    for (const key of Object.keys(o)) if (!OPTION_KEYS.has(key)) die(`${where} (${k.id}).options: unknown key ${JSON.stringify(key)}`);
    if (o.authorizedParties != null && !isStrArray(o.authorizedParties)) die(`${where} (${k.id}).options.authorizedParties must be an array of strings or null`);
    if (o.audience != null && !isStr(o.audience) && !isStrArray(o.audience)) die(`${where} (${k.id}).options.audience must be a string, an array of strings or null`);
    if (o.issuer != null && !isStr(o.issuer) && !isStrArray(o.issuer)) die(`${where} (${k.id}).options.issuer must be a string, an array of strings or null`);
    if (o.clockSkewInMs != null && typeof o.clockSkewInMs !== 'number') die(`${where} (${k.id}).options.clockSkewInMs must be a number or null`);
  });
}

const corpus = loadCorpus(process.argv[2]);

// ---------------------------------------------------------------- sandbox

// Frozen clock. The SDK reads time through Date.now() (and `new Date(Date.now())`); a bare
// `new Date()` or `Date()` is frozen too, in case a code path uses it.
const NOW = corpus.now_ms;
const RealDate = globalThis.Date;
globalThis.Date = new Proxy(RealDate, {
  construct(target, args, newTarget) {
    return Reflect.construct(target, args.length === 0 ? [NOW] : args, newTarget === globalThis.Date ? target : newTarget);
  },
  apply() {
    return new RealDate(NOW).toString();
  },
  get(target, prop, receiver) {
    if (prop === 'now') return () => NOW;
    return Reflect.get(target, prop, receiver);
  },
});

// No network. @clerk/backend binds `fetch` when it is imported, so this must happen before
// the dynamic import below. Any attempt is remembered and turns the exit code into 3.
let networkAttempts = 0;
globalThis.fetch = async (input) => {
  networkAttempts += 1;
  const url = typeof input === 'string' ? input : input?.url ?? String(input);
  process.stderr.write(`decide.mjs: blocked network access to ${url}\n`);
  const e = new Error(`network access is disabled in decide.mjs (${url})`);
  e.name = 'NetworkDisabledError';
  throw e;
};

// stdout carries only the result lines; anything the SDK logs goes to stderr.
const toStderr = (...a) => process.stderr.write(a.map((x) => (typeof x === 'string' ? x : JSON.stringify(x) ?? String(x))).join(' ') + '\n');
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;
process.env.CLERK_TELEMETRY_DISABLED = '1';

const { createClerkClient, verifyToken } = await import('@clerk/backend');

// ---------------------------------------------------------------- decisions

const DEBUG = !!process.env.DECIDE_DEBUG;
const errName = (e) => (e && typeof e === 'object' && typeof e.name === 'string' && e.name) || typeof e;
const isTVE = (e) => e && typeof e === 'object' && typeof e.reason === 'string' && e.reason !== '';

// Only the options the case sets; a null (or absent) option is left out entirely.
function caseOptions(o = {}) {
  const out = {};
  for (const key of OPTION_KEYS) if (o[key] != null) out[key] = o[key];
  return out;
}

async function decideVerify(c) {
  try {
    await verifyToken(c.token, { jwtKey: corpus.public_key_pem, ...caseOptions(c.options) });
    return { ok: true, reason: 'ok' };
  } catch (e) {
    if (DEBUG) toStderr(`[${c.id}] ${errName(e)}: ${e?.message}`);
    return { ok: false, reason: isTVE(e) ? e.reason : `non-tve:${errName(e)}` };
  }
}

const clerk = createClerkClient({
  secretKey: corpus.secret_key,
  publishableKey: corpus.publishable_key,
  jwtKey: corpus.public_key_pem,
  telemetry: { disabled: true },
});

// Mode "has": the session route, then `auth.has(c.has)` on the signed-in auth object.
async function decideHas(c) {
  const session = await decideSession(c, true);
  if (!session.auth) return session;
  let granted;
  try {
    granted = session.auth.has(c.has);
  } catch (e) {
    if (DEBUG) toStderr(`[${c.id}] has() threw ${errName(e)}: ${e?.message}`);
    return { ok: false, reason: `has-threw:${errName(e)}` };
  }
  if (DEBUG) toStderr(`[${c.id}] has(${JSON.stringify(c.has)}) = ${granted}`);
  return granted === true ? { ok: true, reason: 'ok' } : { ok: false, reason: 'has:false' };
}

async function decideSession(c, keepAuth = false) {
  let request;
  try {
    request = new Request('https://api.example.com/protected', { headers: { authorization: 'Bearer ' + c.token } });
  } catch (e) {
    // The token cannot be carried in an HTTP header at all (CR, LF, NUL, code points > U+00FF).
    if (DEBUG) toStderr(`[${c.id}] Request: ${errName(e)}: ${e?.message}`);
    return { ok: false, reason: `unsendable:${errName(e)}` };
  }
  let state;
  try {
    state = await clerk.authenticateRequest(request, {
      jwtKey: corpus.public_key_pem,
      publishableKey: corpus.publishable_key,
      secretKey: corpus.secret_key,
      acceptsToken: 'session_token',
      // authorizedParties, audience, issuer and clockSkewInMs: the options object is spread into the
      // AuthenticateContext, which is handed to verifyToken as its options.
      ...caseOptions(c.options),
    });
  } catch (e) {
    if (DEBUG) toStderr(`[${c.id}] authenticateRequest threw ${errName(e)}: ${e?.message}`);
    return { ok: false, reason: `non-tve:${errName(e)}` };
  }
  if (DEBUG) toStderr(`[${c.id}] status=${state.status} reason=${state.reason} message=${state.message}`);
  if (!state.isSignedIn) {
    const prefix = state.status === 'handshake' ? 'handshake' : 'signed-out';
    return { ok: false, reason: `${prefix}:${state.reason}` };
  }
  let auth;
  try {
    auth = state.toAuth(); // default treatPendingAsSignedOut = true
  } catch (e) {
    // e.g. a v2 `fea` element without a colon: signed in, but building the auth object throws.
    if (DEBUG) toStderr(`[${c.id}] toAuth threw ${errName(e)}: ${e?.message}`);
    return { ok: false, reason: `non-tve:${errName(e)}` };
  }
  if (!auth || auth.isAuthenticated !== true) {
    return { ok: false, reason: auth?.sessionStatus === 'pending' ? 'pending' : 'signed-out-auth' };
  }
  return keepAuth ? { ok: true, reason: 'ok', auth } : { ok: true, reason: 'ok' };
}

for (const c of corpus.cases) {
  let r;
  try {
    r = c.mode === 'verify' ? await decideVerify(c) : c.mode === 'has' ? await decideHas(c) : await decideSession(c);
  } catch (e) {
    r = { ok: false, reason: `non-tve:${errName(e)}` };
  }
  process.stdout.write(JSON.stringify({ id: c.id, ok: r.ok, reason: r.reason }) + '\n');
}

if (networkAttempts > 0) {
  process.stderr.write(`decide.mjs: the SDK attempted ${networkAttempts} network request(s); results are not trustworthy\n`);
  process.exitCode = 3;
}
