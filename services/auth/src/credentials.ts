/**
 * Password hashes, one document per user in the `credentials` collection
 * (_id = user id). The users service owns everything else about a user.
 */

import { ensureIndexes, normalizeEmail } from "@leadmesh/platform";
import type { Collection, Db } from "mongodb";

export interface CredentialDocument {
  _id: string;
  tenantId: string;
  /** Lower-cased email: sign-in looks credentials up by it. */
  emailKey: string;
  passwordHash: string;
  updateTime: Date;
}

/** The users service stores the same normalized form, so both agree on who an email names. */
export const emailKey = normalizeEmail;

export async function ensureAuthIndexes(db: Db): Promise<void> {
  await ensureIndexes(db.collection("credentials"), [{ key: { tenantId: 1, emailKey: 1 }, name: "tenant_email", unique: true }]);
}

export class CredentialStore {
  private readonly credentials: Collection<CredentialDocument>;

  constructor(db: Db) {
    this.credentials = db.collection<CredentialDocument>("credentials");
  }

  byEmail(tenantId: string, email: string): Promise<CredentialDocument | null> {
    return this.credentials.findOne({ tenantId, emailKey: emailKey(email) });
  }

  byUser(tenantId: string, userId: string): Promise<CredentialDocument | null> {
    return this.credentials.findOne({ _id: userId, tenantId });
  }

  async setPassword(tenantId: string, userId: string, email: string, passwordHash: string): Promise<void> {
    // The users service says this email now belongs to userId: a record of
    // another user with it is stale (a deleted user whose address was freed).
    await this.credentials.deleteMany({ tenantId, emailKey: emailKey(email), _id: { $ne: userId } });
    await this.credentials.updateOne(
      { _id: userId, tenantId },
      { $set: { emailKey: emailKey(email), passwordHash, updateTime: new Date() } },
      { upsert: true },
    );
  }
}
