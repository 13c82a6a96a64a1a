/**
 * Lead writes of the sale flow (claim, record, clear, release): revisioned
 * writes of one lead by id in its tenant, made for whoever the flow acts for
 * (no caller visibility: the RPC checked it, recovery has no caller). Every
 * written lead reaches `written` (handlers': the read cache) before anyone is
 * answered, as every other lead write does.
 */
import { type Lead, LeadStatus } from "@leadmesh/contracts/leads/v1/lead";
import { NotFoundError, type RevisionedChanges, type RevisionedWrite } from "@leadmesh/platform";
import type { ActivityDetail } from "../domain/activity-rules";
import { type LeadDocument, toLead } from "../store";

/** The lead store as the sale flow uses it (LeadStore; an in-memory one in unit tests). */
export interface LeadRecords {
  get(tenantId: string, id: string): Promise<LeadDocument | null>;
  write(request: RevisionedWrite<LeadDocument>): Promise<{ before: LeadDocument; after: LeadDocument }>;
  insertActivity(tenantId: string, leadId: string, authorId: string, detail: ActivityDetail, now: Date, id?: string): Promise<unknown>;
}

export class LeadWriter {
  constructor(
    readonly leads: LeadRecords,
    private readonly written: (lead: Lead) => Promise<Lead>,
    readonly clock: () => Date,
  ) {}

  async write(
    tenantId: string,
    id: string,
    actorId: string,
    change: (current: LeadDocument) => RevisionedChanges<LeadDocument> | undefined,
    signal?: AbortSignal,
  ): Promise<{ before: LeadDocument; after: LeadDocument }> {
    const result = await this.leads.write({
      id,
      actorId,
      clientEtag: "",
      read: async () => {
        const document = await this.leads.get(tenantId, id);
        if (!document) throw new NotFoundError("lead", id);
        return document;
      },
      change,
      signal,
      stamp: () => ({ updateTime: this.clock() }),
    });
    if (result.after.revision !== result.before.revision) await this.written(toLead(result.after));
    return result;
  }

  /** The status change a write made, as an activity; its id is the revision's, so a write recorded twice (a twin, a retry) records it once. */
  async recordStatusChange(before: LeadDocument, after: LeadDocument, actorId: string): Promise<void> {
    if (before.status === after.status) return;
    await this.leads.insertActivity(
      after.tenantId,
      after._id,
      actorId,
      { $case: "statusChange", value: { fromStatus: statusOf(before), toStatus: statusOf(after) } },
      after.updateTime,
      `${after._id}-r${after.revision}`,
    );
  }
}

function statusOf(document: LeadDocument): LeadStatus {
  const value = LeadStatus[document.status as keyof typeof LeadStatus];
  return typeof value === "number" ? value : LeadStatus.LEAD_STATUS_UNSPECIFIED;
}
