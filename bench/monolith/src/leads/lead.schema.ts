import { Prop, Schema, SchemaFactory } from "@nestjs/mongoose";
import type { Types } from "mongoose";

/**
 * A lead as the monolith stores it, in the field names (and enum spellings)
 * leadmesh's REST API uses, so the same request bodies work on both.
 * Mongoose's version key (__v) is the etag.
 */
@Schema({ collection: "leads", timestamps: { createdAt: "createTime", updatedAt: "updateTime" } })
export class Lead {
  @Prop({ type: String, required: true })
  tenantId: string;

  @Prop({ type: String, required: true })
  firstName: string;

  @Prop({ type: String, default: "" })
  lastName: string;

  @Prop({ type: String, default: "" })
  email: string;

  @Prop({ type: String, default: "" })
  phone: string;

  @Prop({ type: String, default: "" })
  company: string;

  @Prop({ type: String, required: true })
  source: string;

  @Prop({ type: String, default: "LEAD_STATUS_NEW" })
  status: string;

  @Prop({ type: String, default: "" })
  assigneeId: string;

  @Prop({ type: Number, default: 0 })
  score: number;

  @Prop({ type: [String], default: [] })
  tags: string[];

  @Prop({ type: Map, of: String, default: {} })
  attributes: Map<string, string>;

  @Prop({ type: String, default: "" })
  countryCode: string;

  @Prop({ type: String, default: "" })
  postalCode: string;

  @Prop({ type: Date, default: null })
  deleteTime: Date | null;

  createTime: Date;
  updateTime: Date;
}

export const LeadSchema = SchemaFactory.createForClass(Lead);
// Newest first within a tenant: the list query's order.
LeadSchema.index({ tenantId: 1, createTime: -1, _id: -1 });

/** A lead read with lean(): a plain object (attributes too). */
export type LeadRecord = Omit<Lead, "attributes"> & { _id: Types.ObjectId; __v: number; attributes: Record<string, string> };

export function toLeadJson(lead: LeadRecord) {
  return {
    id: lead._id.toHexString(),
    tenantId: lead.tenantId,
    firstName: lead.firstName,
    lastName: lead.lastName,
    email: lead.email,
    phone: lead.phone,
    company: lead.company,
    source: lead.source,
    status: lead.status,
    assigneeId: lead.assigneeId,
    score: lead.score,
    tags: lead.tags,
    attributes: lead.attributes ?? {},
    countryCode: lead.countryCode,
    postalCode: lead.postalCode,
    createTime: lead.createTime.toISOString(),
    updateTime: lead.updateTime.toISOString(),
    ...(lead.deleteTime ? { deleteTime: lead.deleteTime.toISOString() } : {}),
    etag: String(lead.__v),
  };
}
