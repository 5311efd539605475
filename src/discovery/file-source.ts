// file: a JSON file of backends that another tool renders, re-read when it changes. Accepted forms:
//   [ "http://10.0.0.5:8080", { "url": "http://10.0.0.6:8080", "weight": 2, "zone": "b" } ]
//   { "backends": [ ...the same... ] }
// The directory is watched (tools usually write a temporary file and rename it over the old one,
// which a watch on the file itself would lose), with a slow stat poll behind it because inotify
// is not there on every file system. A file that is missing or invalid keeps the last good list.

import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { FileDiscovery } from '../model/discovery.js';
import { parseEntry, type Discovered, type DiscoverySource, type SourceContext } from './source.js';

/** Renders come as a burst of events (write, rename): read once they are over. */
const SETTLE_MS = 50;
/** The poll behind the watch: a change is seen within this much even without inotify. */
const POLL_MS = 2000;

export class FileSource implements DiscoverySource {
  readonly kind = 'file' as const;
  readonly #spec: FileDiscovery;
  readonly #ctx: SourceContext;
  #watcher: FSWatcher | null = null;
  #poll: NodeJS.Timeout | null = null;
  #settle: NodeJS.Timeout | null = null;
  #seen = '';
  #stopped = false;

  constructor(spec: FileDiscovery, ctx: SourceContext) {
    this.#spec = spec;
    this.#ctx = ctx;
  }

  start(update: (members: readonly Discovered[] | null) => void): void {
    const read = (): void => {
      this.#settle = null;
      void this.#read().then((members) => {
        if (!this.#stopped && members !== undefined) update(members);
      });
    };
    const soon = (): void => {
      if (this.#settle === null && !this.#stopped) this.#settle = setTimeout(read, SETTLE_MS);
    };
    const name = basename(this.#spec.path);
    try {
      this.#watcher = watch(dirname(this.#spec.path), (_event, file) => {
        if (file === null || file === name) soon();
      });
      this.#watcher.on('error', () => undefined);
    } catch (err) {
      this.#ctx.log.warn({ pool: this.#ctx.pool, file: this.#spec.path, err: (err as Error).message }, 'discovery file: cannot watch its directory; polling only');
    }
    this.#poll = setInterval(soon, POLL_MS);
    this.#poll.unref();
    read();
  }

  /** The file's members; null when it cannot be used (logged), undefined when it did not change. */
  async #read(): Promise<readonly Discovered[] | null | undefined> {
    const { pool, log } = this.#ctx;
    const file = this.#spec.path;
    let text: string;
    try {
      const info = await stat(file);
      text = await readFile(file, 'utf8');
      const seen = `${info.mtimeMs}:${info.size}:${text}`;
      if (seen === this.#seen) return undefined;
      this.#seen = seen;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      if (this.#seen !== `missing:${code}`) log.warn({ pool, file, err: code }, 'discovery file cannot be read; keeping the last known backends');
      this.#seen = `missing:${code}`;
      return null;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      log.error({ pool, file, err: (err as Error).message }, 'discovery file is not valid JSON; keeping the last known backends');
      return null;
    }
    const list = Array.isArray(doc) ? doc : typeof doc === 'object' && doc !== null && Array.isArray((doc as { backends?: unknown }).backends) ? (doc as { backends: unknown[] }).backends : null;
    if (list === null) {
      log.error({ pool, file }, 'discovery file: expected a list of backends, or {"backends": [...]}; keeping the last known backends');
      return null;
    }
    const members: Discovered[] = [];
    const errors: string[] = [];
    list.forEach((item, i) => {
      const parsed = parseEntry(typeof item === 'string' ? { url: item } : item, 'file');
      if (parsed.ok) members.push(parsed.member);
      else errors.push(`[${i}]: ${parsed.error}`);
    });
    if (errors.length > 0) {
      log.error({ pool, file, errors }, 'discovery file has invalid entries; keeping the last known backends');
      return null;
    }
    return members;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watcher?.close();
    if (this.#poll !== null) clearInterval(this.#poll);
    if (this.#settle !== null) clearTimeout(this.#settle);
  }
}
