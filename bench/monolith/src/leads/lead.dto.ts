import { Type } from "class-transformer";
import {
  ArrayMaxSize,
  IsArray,
  IsEmail,
  IsIn,
  IsInt,
  IsISO31661Alpha2,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
} from "class-validator";

export const LEAD_SOURCES = [
  "LEAD_SOURCE_WEB_FORM",
  "LEAD_SOURCE_LANDING_PAGE",
  "LEAD_SOURCE_REFERRAL",
  "LEAD_SOURCE_PARTNER",
  "LEAD_SOURCE_IMPORT",
  "LEAD_SOURCE_INBOUND_CALL",
  "LEAD_SOURCE_OTHER",
];
export const LEAD_STATUSES = [
  "LEAD_STATUS_NEW",
  "LEAD_STATUS_CONTACTED",
  "LEAD_STATUS_QUALIFIED",
  "LEAD_STATUS_UNQUALIFIED",
  "LEAD_STATUS_SOLD",
  "LEAD_STATUS_LOST",
];
const E164 = /^\+[1-9]\d{1,14}$/;
const TAG = /^[a-z0-9_-]{1,50}$/;

/** POST /api/v1/leads: the rules of leadmesh's lead.proto, as class-validator decorators. */
export class CreateLeadDto {
  @IsString()
  @Length(1, 100)
  firstName: string;

  @IsOptional()
  @IsString()
  @MaxLength(100)
  lastName?: string;

  @IsOptional()
  @IsEmail()
  @MaxLength(254)
  email?: string;

  @IsOptional()
  @Matches(E164, { message: "phone must be in E.164 format" })
  phone?: string;

  @IsOptional()
  @IsString()
  @MaxLength(200)
  company?: string;

  @IsIn(LEAD_SOURCES)
  source: string;

  @IsOptional()
  @IsIn(LEAD_STATUSES)
  status?: string;

  @IsOptional()
  @IsString()
  @MaxLength(100)
  assigneeId?: string;

  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(100)
  score?: number;

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(20)
  @Matches(TAG, { each: true })
  tags?: string[];

  @IsOptional()
  @IsObject()
  attributes?: Record<string, string>;

  @IsOptional()
  @IsISO31661Alpha2()
  countryCode?: string;

  @IsOptional()
  @IsString()
  @MaxLength(20)
  postalCode?: string;
}

/** PATCH /api/v1/leads/:id: the fields to change; etag, when sent, must match (optimistic concurrency). */
export class UpdateLeadDto {
  @IsOptional()
  @IsString()
  @Length(1, 100)
  firstName?: string;

  @IsOptional()
  @IsString()
  @MaxLength(100)
  lastName?: string;

  @IsOptional()
  @IsEmail()
  @MaxLength(254)
  email?: string;

  @IsOptional()
  @Matches(E164, { message: "phone must be in E.164 format" })
  phone?: string;

  @IsOptional()
  @IsString()
  @MaxLength(200)
  company?: string;

  @IsOptional()
  @IsIn(LEAD_SOURCES)
  source?: string;

  @IsOptional()
  @IsIn(LEAD_STATUSES)
  status?: string;

  @IsOptional()
  @IsString()
  @MaxLength(100)
  assigneeId?: string;

  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(100)
  score?: number;

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(20)
  @Matches(TAG, { each: true })
  tags?: string[];

  @IsOptional()
  @IsObject()
  attributes?: Record<string, string>;

  @IsOptional()
  @IsISO31661Alpha2()
  countryCode?: string;

  @IsOptional()
  @IsString()
  @MaxLength(20)
  postalCode?: string;

  @IsOptional()
  @Matches(/^\d+$/, { message: "etag must be one the API returned" })
  etag?: string;
}

/** GET /api/v1/leads query: a page size (default 50, like leadmesh) and the cursor of the previous page. */
export class ListLeadsQuery {
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  pageSize?: number;

  @IsOptional()
  @IsString()
  @MaxLength(200)
  pageToken?: string;
}
