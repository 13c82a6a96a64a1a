/**
 * Password hashing with argon2id (@node-rs/argon2: native, prebuilt, runs on
 * libuv's thread pool so hashing does not block the event loop).
 */
import { hash, verify } from "@node-rs/argon2";

/** @node-rs/argon2's Algorithm.Argon2id (an ambient const enum, unusable under isolatedModules). */
const ARGON2ID = 2;

import type { Violations } from "@leadmesh/platform";

export interface PasswordCost {
  memoryKib: number;
  iterations: number;
}

/**
 * At most this many hashes run at once. Each takes ~19 MiB and one libuv
 * pool thread (4 by default, shared with DNS and file I/O); the rest wait
 * here instead of starving everything else.
 */
const MAX_CONCURRENT_HASHES = 2;

export class Passwords {
  /** Verified against when an account does not exist, so timing does not reveal which emails exist. */
  private dummyHash: Promise<string>;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly cost: PasswordCost) {
    this.dummyHash = this.hash("not-a-real-password-just-for-timing");
  }

  hash(password: string): Promise<string> {
    return this.limited(() => hash(password, { algorithm: ARGON2ID, memoryCost: this.cost.memoryKib, timeCost: this.cost.iterations, parallelism: 1 }));
  }

  async verify(storedHash: string | undefined, password: string): Promise<boolean> {
    if (storedHash === undefined) {
      const dummy = await this.dummyHash;
      await this.limited(() => verify(dummy, password)).catch(() => false);
      return false;
    }
    return this.limited(() => verify(storedHash, password)).catch(() => false);
  }

  private async limited<T>(work: () => Promise<T>): Promise<T> {
    // A finishing job hands its slot straight to the next waiter.
    if (this.running >= MAX_CONCURRENT_HASHES) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  get description(): string {
    return `argon2id m=${this.cost.memoryKib}KiB t=${this.cost.iterations} p=1`;
  }
}

/** NIST 800-63B style: length over composition rules. */
export function checkPasswordPolicy(password: string, field: string, violations: Violations): void {
  if (password.length < 10) violations.add(field, "must be at least 10 characters");
  else if (password.length > 128) violations.add(field, "must be at most 128 characters");
  else if (/^(.)\1+$/.test(password)) violations.add(field, "must not be one repeated character");
}
