// A Map for entries that come and go by the thousand per second and live a few milliseconds: the
// reservations of requests in flight. V8 allocates a Map's new backing table (every few set/delete
// pairs on a small, busy Map) in the generation of the table it replaces. A Map that outlived two
// scavenges has its table in the old generation, so from then on each of those tables was
// old-generation garbage only a full GC reclaims. Measured (`bench/promotion.mjs --rate 2500`):
// ~290 B per request reached the old generation, nearly all of it attributed to the two such Maps
// on the request path (the limiter's reservations, the meter's in-flight set), and at 3,000 req/s a
// full GC (10–25 ms) came every ~45 s. Moving the few live entries to a fresh Map every
// `renewEvery` deletions keeps the table young: the copy is a handful of entries, a few times a
// second at most. Measured: 44–63 B per request promoted at 2,500–3,500 req/s in runs of up to a
// minute. (Longer runs at ~280 B again were V8's allocation-site pretenuring, which npm start now
// turns off: bench/README.md, "--no-allocation-site-pretenuring".)
export class ChurnMap<K, V> implements Iterable<[K, V]> {
  private map = new Map<K, V>();
  private deletes = 0;

  constructor(private readonly renewEvery = 256) {}

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  set(key: K, value: V): this {
    this.map.set(key, value);
    return this;
  }

  /** Deleting while iterating is safe: an iteration goes on over the Map it started on. */
  delete(key: K): boolean {
    if (!this.map.delete(key)) return false;
    if (++this.deletes >= this.renewEvery) {
      this.deletes = 0;
      this.map = new Map(this.map);
    }
    return true;
  }

  clear(): void {
    this.map = new Map();
    this.deletes = 0;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.map[Symbol.iterator]();
  }
}
