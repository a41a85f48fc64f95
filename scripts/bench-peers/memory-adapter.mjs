// An in-memory storage adapter for node oidc-provider without a size cap, for the
// side-by-side benchmark (scripts/bench --peers).
//
// The library's own MemoryAdapter is an LRU of 1,000 entries (a benchmark that issues
// more tokens than that would see them evicted and fail), and it keeps each grant's
// tokens in a Map it scans in full on every new token (Math.max over every member), so
// its cost grows with the grant. This one is what a production adapter does with Redis
// (the library's example Redis adapter: one key per artifact with a TTL, one set per
// grant, one index per session uid and user code), over JavaScript Maps: every
// operation O(1); expired entries are dropped when read and by a sweep every 30 s.

const store = new Map(); // key -> { value, exp } (exp: ms since the epoch, or Infinity)
const grants = new Map(); // grantId -> Set of artifact keys
const SWEEP_MS = 30_000;

const grantable = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

function get(key) {
  const entry = store.get(key);
  if (entry === undefined) return undefined;
  if (entry.exp <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return entry.value;
}

function set(key, value, expiresIn) {
  const exp = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
  store.set(key, { value, exp });
}

const sweep = setInterval(() => {
  const now = Date.now();
  for (const [key, entry] of store) {
    if (entry.exp <= now) store.delete(key);
  }
  for (const [grantId, keys] of grants) {
    for (const key of keys) {
      if (!store.has(key)) keys.delete(key);
    }
    if (keys.size === 0) grants.delete(grantId);
  }
}, SWEEP_MS);
sweep.unref();

export default class MemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (this.model === 'Session') set(`sessionUid:${payload.uid}`, id, expiresIn);
    if (grantable.has(this.model) && payload.grantId) {
      let keys = grants.get(payload.grantId);
      if (!keys) {
        keys = new Set();
        grants.set(payload.grantId, keys);
      }
      keys.add(key);
    }
    if (payload.userCode) set(`userCode:${payload.userCode}`, id, expiresIn);
    set(key, payload, expiresIn);
  }

  async find(id) {
    return get(this.key(id));
  }

  async findByUid(uid) {
    const id = get(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = get(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const value = get(this.key(id));
    if (value) value.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const keys = grants.get(grantId);
    if (!keys) return;
    for (const key of keys) store.delete(key);
    grants.delete(grantId);
  }
}

/** How many entries the store holds (printed by the provider when it stops). */
export function size() {
  return { entries: store.size, grants: grants.size };
}
