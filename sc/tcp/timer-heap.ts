// A binary min-heap of (deadline, item): the stack's one timer structure for all
// connections. Entries are never updated in place: when an item's deadline moves earlier a
// new entry is pushed, and stale entries are skipped when they surface (the stack compares
// an entry's deadline with the item's current `heapAt`). Deadlines moving later (the common
// case: every ACK restarts the retransmission timer) cost nothing here.

export interface HeapEntry<T> {
  at: number;
  item: T;
}

export class TimerHeap<T> {
  private ats: number[] = [];
  private items: T[] = [];
  private readonly top: HeapEntry<T> = { at: 0, item: undefined as unknown as T };

  get size(): number {
    return this.ats.length;
  }

  push(at: number, item: T): void {
    const ats = this.ats;
    const items = this.items;
    let i = ats.length;
    ats.push(at);
    items.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (ats[p] <= at) break;
      ats[i] = ats[p];
      items[i] = items[p];
      i = p;
    }
    ats[i] = at;
    items[i] = item;
  }

  /** The earliest entry (a reused object: read it before the next call), or undefined. */
  peek(): HeapEntry<T> | undefined {
    if (this.ats.length === 0) return undefined;
    this.top.at = this.ats[0];
    this.top.item = this.items[0];
    return this.top;
  }

  pop(): void {
    const ats = this.ats;
    const items = this.items;
    const n = ats.length - 1;
    if (n < 0) return;
    const at = ats[n];
    const item = items[n];
    ats.pop();
    items.pop();
    if (n === 0) return;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && ats[c + 1] < ats[c]) c++;
      if (ats[c] >= at) break;
      ats[i] = ats[c];
      items[i] = items[c];
      i = c;
    }
    ats[i] = at;
    items[i] = item;
  }
}
