import { BadRequestException, ConflictException, Injectable, NotFoundException } from "@nestjs/common";
import { InjectModel } from "@nestjs/mongoose";
import { Model, type QueryFilter, Types } from "mongoose";
import type { CreateLeadDto, UpdateLeadDto } from "./lead.dto";
import { Lead, type LeadRecord, toLeadJson } from "./lead.schema";

const DEFAULT_PAGE_SIZE = 50;

/** Position after the last lead of a page: newest first, ties broken by id. */
interface PageCursor {
  createTime: string;
  id: string;
}

function encodeCursor(lead: LeadRecord): string {
  const cursor: PageCursor = { createTime: lead.createTime.toISOString(), id: lead._id.toHexString() };
  return Buffer.from(JSON.stringify(cursor)).toString("base64url");
}

function decodeCursor(token: string): PageCursor {
  try {
    const cursor = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as Partial<PageCursor>;
    if (typeof cursor.createTime === "string" && typeof cursor.id === "string" && Types.ObjectId.isValid(cursor.id)) return cursor as PageCursor;
  } catch {
    // Falls through to the 400 below.
  }
  throw new BadRequestException("pageToken is not one this API returned");
}

/** Every query names the caller's tenant: there is no way to read or write across tenants. */
@Injectable()
export class LeadsService {
  constructor(@InjectModel(Lead.name) private readonly leads: Model<Lead>) {}

  async get(tenantId: string, id: Types.ObjectId) {
    const lead = await this.leads.findOne({ _id: id, tenantId }).lean<LeadRecord>().exec();
    if (!lead) throw new NotFoundException(`lead "${id.toHexString()}" not found`);
    return toLeadJson(lead);
  }

  async list(tenantId: string, pageSize = DEFAULT_PAGE_SIZE, pageToken?: string) {
    const filter: QueryFilter<Lead> = { tenantId, deleteTime: null };
    if (pageToken) {
      const cursor = decodeCursor(pageToken);
      const createTime = new Date(cursor.createTime);
      filter.$or = [{ createTime: { $lt: createTime } }, { createTime, _id: { $lt: new Types.ObjectId(cursor.id) } }];
    }
    // One more than the page: whether there is a next page.
    const found = await this.leads
      .find(filter)
      .sort({ createTime: -1, _id: -1 })
      .limit(pageSize + 1)
      .lean<LeadRecord[]>()
      .exec();
    const page = found.slice(0, pageSize);
    return { leads: page.map(toLeadJson), nextPageToken: found.length > pageSize ? encodeCursor(page[page.length - 1]) : "" };
  }

  async create(tenantId: string, input: CreateLeadDto) {
    if (!input.email && !input.phone) throw new BadRequestException("a lead needs an email or a phone");
    const created = await this.leads.create({ ...input, tenantId });
    return toLeadJson(created.toObject<LeadRecord>({ flattenMaps: true }));
  }

  async update(tenantId: string, id: Types.ObjectId, { etag, ...changes }: UpdateLeadDto) {
    if (Object.keys(changes).length === 0) throw new BadRequestException("the request changes no field");
    const filter: QueryFilter<Lead> = { _id: id, tenantId, deleteTime: null };
    if (etag !== undefined) filter.__v = Number(etag);
    const updated = await this.leads
      .findOneAndUpdate(filter, { $set: changes, $inc: { __v: 1 } }, { returnDocument: "after", runValidators: true })
      .lean<LeadRecord>()
      .exec();
    if (updated) {
      if (!updated.email && !updated.phone) throw new BadRequestException("a lead needs an email or a phone");
      return toLeadJson(updated);
    }
    if (etag !== undefined && (await this.leads.exists({ _id: id, tenantId, deleteTime: null }))) {
      throw new ConflictException(`lead "${id.toHexString()}" changed since etag ${etag}`);
    }
    throw new NotFoundException(`lead "${id.toHexString()}" not found`);
  }
}
