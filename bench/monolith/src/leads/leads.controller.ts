import { Body, Controller, Get, Param, Patch, Post, Query } from "@nestjs/common";
import { ParseObjectIdPipe } from "@nestjs/mongoose";
import type { Types } from "mongoose";
import { type Caller, CurrentCaller, Roles } from "../auth/caller";
import { CreateLeadDto, ListLeadsQuery, UpdateLeadDto } from "./lead.dto";
import { LeadsService } from "./leads.service";

/** The leads endpoints, at leadmesh's REST paths and in its JSON shapes. */
@Controller("api/v1/leads")
@Roles("agent", "manager", "admin")
export class LeadsController {
  constructor(private readonly leads: LeadsService) {}

  @Get(":id")
  async get(@CurrentCaller() caller: Caller, @Param("id", ParseObjectIdPipe) id: Types.ObjectId) {
    return { lead: await this.leads.get(caller.tenant, id) };
  }

  @Get()
  list(@CurrentCaller() caller: Caller, @Query() query: ListLeadsQuery) {
    return this.leads.list(caller.tenant, query.pageSize, query.pageToken);
  }

  @Post()
  async create(@CurrentCaller() caller: Caller, @Body() body: CreateLeadDto) {
    return { lead: await this.leads.create(caller.tenant, body) };
  }

  @Patch(":id")
  async update(@CurrentCaller() caller: Caller, @Param("id", ParseObjectIdPipe) id: Types.ObjectId, @Body() body: UpdateLeadDto) {
    return { lead: await this.leads.update(caller.tenant, id, body) };
  }
}
