// LFU with dynamic ageing (LFU-DA, as in Squid's heap LFUDA): an entry's priority is
// L + frequency, where L, the cache age, becomes the priority of each evicted entry. A newcomer
// enters at L + 1, so as the cache churns, entries that were popular long ago fall behind
// and are evicted instead of pinning the cache forever (plain LFU's flaw). Ties go to the
// least recently used. A binary min-heap keyed by (priority, last use): O(log n) per
// operation. Pure; bounded by a caller-supplied cost per entry.

interface Entry<V> {
  key: string;
  value: V;
  cost: number;
  freq: number;
  priority: number;
  lastUse: number;
  index: number;
}

export class LfuCache<V> {
  private readonly map = new Map<string, Entry<V>>();
  private readonly heap: Entry<V>[] = [];
  private age = 0;
  private clock = 0;
  bytes = 0;

  constructor(
    public maxBytes: number,
    private readonly onEvict: (key: string, value: V) => void = () => undefined,
  ) {}

  get size(): number {
    return this.map.size;
  }

  /** The current cache age L (the priority of the last evicted entry). */
  get cacheAge(): number {
    return this.age;
  }

  /** Frequency count of an entry (for tests and stats), 0 if absent. */
  frequency(key: string): number {
    return this.map.get(key)?.freq ?? 0;
  }

  get(key: string): V | undefined {
    return this.touch(key, 1);
  }

  /** Counts `count` uses of an entry at once (uses reported from elsewhere); its value, if present. */
  touch(key: string, count: number): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    e.freq += count;
    e.priority = this.age + e.freq;
    e.lastUse = ++this.clock;
    this.down(e.index);
    return e.value;
  }

  peek(key: string): V | undefined {
    return this.map.get(key)?.value;
  }

  /** Inserts or replaces; false (and nothing changes) if `cost` exceeds the whole cache. */
  set(key: string, value: V, cost: number): boolean {
    if (cost > this.maxBytes) return false;
    const old = this.map.get(key);
    if (old !== undefined) {
      this.bytes += cost - old.cost;
      old.value = value;
      old.cost = cost;
      old.lastUse = ++this.clock;
      this.down(old.index);
      this.evictUntilFits(old);
      return true;
    }
    const e: Entry<V> = { key, value, cost, freq: 1, priority: 0, lastUse: 0, index: -1 };
    this.bytes += cost;
    this.evictUntilFits(null);
    e.priority = this.age + 1;
    e.lastUse = ++this.clock;
    e.index = this.heap.length;
    this.heap.push(e);
    this.up(e.index);
    this.map.set(key, e);
    return true;
  }

  delete(key: string): boolean {
    const e = this.map.get(key);
    if (e === undefined) return false;
    this.remove(e);
    return true;
  }

  keys(): IterableIterator<string> {
    return this.map.keys();
  }

  /** Changes the byte bound; a smaller one evicts by priority at once. */
  resize(maxBytes: number): void {
    this.maxBytes = maxBytes;
    this.evictUntilFits(null);
  }

  clear(): void {
    this.map.clear();
    this.heap.length = 0;
    this.bytes = 0;
  }

  private evictUntilFits(keep: Entry<V> | null): void {
    while (this.bytes > this.maxBytes && this.heap.length > 0) {
      let victim = this.heap[0]!;
      if (victim === keep) {
        // Never evict the entry being stored; take the smaller of its children instead.
        const a = this.heap[1];
        const b = this.heap[2];
        if (a === undefined) return;
        victim = b !== undefined && this.less(b, a) ? b : a;
      }
      this.age = victim.priority;
      this.remove(victim);
      this.onEvict(victim.key, victim.value);
    }
  }

  private remove(e: Entry<V>): void {
    this.map.delete(e.key);
    this.bytes -= e.cost;
    const last = this.heap.pop()!;
    if (last !== e) {
      this.heap[e.index] = last;
      last.index = e.index;
      this.down(last.index);
      this.up(last.index);
    }
    e.index = -1;
  }

  private less(a: Entry<V>, b: Entry<V>): boolean {
    return a.priority < b.priority || (a.priority === b.priority && a.lastUse < b.lastUse);
  }

  private up(i: number): void {
    const h = this.heap;
    const e = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(e, h[p]!)) break;
      h[i] = h[p]!;
      h[i]!.index = i;
      i = p;
    }
    h[i] = e;
    e.index = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const e = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.less(h[r]!, h[l]!) ? r : l;
      if (!this.less(h[c]!, e)) break;
      h[i] = h[c]!;
      h[i]!.index = i;
      i = c;
    }
    h[i] = e;
    e.index = i;
  }
}
