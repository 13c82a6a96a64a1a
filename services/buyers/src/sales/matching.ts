/**
 * Which buyers may take a lead, and in which order they are tried (SellLead,
 * sell.ts). Pure: the buyer as a SaleBuyer view (sell.ts maps the stored
 * document to it), the lead as a SaleLead, the clock and the tenant's current
 * day/month keys are all passed in, so the same rules run for the ranking
 * before any write and again inside the charge on the fresh document.
 */

import { createHash } from "node:crypto";
import { BuyerSkipReason } from "@leadmesh/contracts/buyers/v1/lead_sale";
import type { CounterKeys } from "../domain/calendar";

/** The criteria as matching reads them: lead sources by enum name, ages in ms (0: no limit). */
export interface SaleCriteria {
  sources: readonly string[];
  countryCodes: readonly string[];
  /** 0 accepts every score. */
  minScore: number;
  /** 0 means no maximum. */
  maxScore: number;
  postalCodePrefixes: readonly string[];
  tags: readonly string[];
  /** 0 accepts leads of any age. */
  maxLeadAgeMs: number;
}

/**
 * Sales counted against the caps, as stored with the buyer: `day`
 * ("YYYY-MM-DD") and `month` ("YYYY-MM") in the tenant's time zone name the
 * period the count belongs to. A count of another period than the current
 * one is a count of zero: the caps reset without anybody writing.
 */
export interface SaleCounters {
  day: string;
  dayCount: number;
  month: string;
  monthCount: number;
}

export type { CounterKeys };

export interface SaleBuyer {
  id: string;
  paused: boolean;
  deleted: boolean;
  criteria: SaleCriteria;
  priceMinor: number;
  priceCurrencyCode: string;
  balanceMinor: number;
  balanceCurrencyCode: string;
  /** 0: unlimited. */
  dailyCap: number;
  /** 0: unlimited. */
  monthlyCap: number;
  counters: SaleCounters;
}

/** The lead as matching reads it: source by enum name; createTime undefined when the caller did not send it. */
export interface SaleLead {
  id: string;
  source: string;
  countryCode: string;
  score: number;
  postalCode: string;
  tags: readonly string[];
  createTime: Date | undefined;
  returnedBuyerIds: readonly string[];
}

/** Why a buyer does not take a lead, with a human explanation. */
export interface Skip {
  reason: BuyerSkipReason;
  text: string;
}

/**
 * The first reason `buyer` cannot take `lead` now, or undefined when it can.
 * The order is fixed (state, criteria, history, currency, caps, balance) so
 * the caller learns the most fundamental reason: a paused buyer whose cap is
 * also reached is reported PAUSED.
 */
export function skipReason(buyer: SaleBuyer, lead: SaleLead, now: Date, keys: CounterKeys): Skip | undefined {
  if (buyer.deleted) return { reason: BuyerSkipReason.BUYER_SKIP_REASON_PAUSED, text: "the buyer was deleted" };
  if (buyer.paused) return { reason: BuyerSkipReason.BUYER_SKIP_REASON_PAUSED, text: "the buyer is paused" };
  const mismatch = criteriaMismatch(buyer.criteria, lead, now);
  if (mismatch) return { reason: BuyerSkipReason.BUYER_SKIP_REASON_CRITERIA, text: mismatch };
  if (lead.returnedBuyerIds.includes(buyer.id)) {
    return { reason: BuyerSkipReason.BUYER_SKIP_REASON_RETURNED_BEFORE, text: "the buyer bought this lead before and returned it" };
  }
  if (buyer.priceCurrencyCode !== buyer.balanceCurrencyCode) {
    return {
      reason: BuyerSkipReason.BUYER_SKIP_REASON_CURRENCY,
      text: `the price is in ${buyer.priceCurrencyCode}, the balance in ${buyer.balanceCurrencyCode}`,
    };
  }
  const today = salesToday(buyer.counters, keys);
  if (buyer.dailyCap > 0 && today >= buyer.dailyCap) {
    return { reason: BuyerSkipReason.BUYER_SKIP_REASON_DAILY_CAP, text: `${today} of ${buyer.dailyCap} leads sold today (${keys.day})` };
  }
  const thisMonth = salesThisMonth(buyer.counters, keys);
  if (buyer.monthlyCap > 0 && thisMonth >= buyer.monthlyCap) {
    return { reason: BuyerSkipReason.BUYER_SKIP_REASON_MONTHLY_CAP, text: `${thisMonth} of ${buyer.monthlyCap} leads sold this month (${keys.month})` };
  }
  if (buyer.balanceMinor < buyer.priceMinor) {
    return {
      reason: BuyerSkipReason.BUYER_SKIP_REASON_INSUFFICIENT_BALANCE,
      text: `balance ${buyer.balanceMinor} is below the price ${buyer.priceMinor} (${buyer.balanceCurrencyCode} minor units)`,
    };
  }
  return undefined;
}

/** Why the lead does not meet the criteria, or undefined when it meets every non-empty criterion. */
export function criteriaMismatch(criteria: SaleCriteria, lead: SaleLead, now: Date): string | undefined {
  if (criteria.sources.length > 0 && !criteria.sources.includes(lead.source)) return `source ${lead.source} is not one of ${criteria.sources.join(", ")}`;
  if (criteria.countryCodes.length > 0 && !criteria.countryCodes.includes(lead.countryCode)) {
    return `country "${lead.countryCode}" is not one of ${criteria.countryCodes.join(", ")}`;
  }
  if (criteria.minScore > 0 && lead.score < criteria.minScore) return `score ${lead.score} is below ${criteria.minScore}`;
  if (criteria.maxScore > 0 && lead.score > criteria.maxScore) return `score ${lead.score} is above ${criteria.maxScore}`;
  if (criteria.postalCodePrefixes.length > 0) {
    const postalCode = normalizedPostalCode(lead.postalCode);
    if (postalCode === "" || !criteria.postalCodePrefixes.some((prefix) => postalCode.startsWith(normalizedPostalCode(prefix)))) {
      return `postal code "${lead.postalCode}" starts with none of ${criteria.postalCodePrefixes.join(", ")}`;
    }
  }
  if (criteria.tags.length > 0 && !criteria.tags.some((tag) => lead.tags.includes(tag))) return `the lead has none of the tags ${criteria.tags.join(", ")}`;
  if (criteria.maxLeadAgeMs > 0) {
    // A lead without create_time has no known age: it cannot be shown to be young enough.
    const ageMs = lead.createTime ? now.getTime() - lead.createTime.getTime() : Number.POSITIVE_INFINITY;
    if (ageMs > criteria.maxLeadAgeMs) return `the lead is older than ${Math.round(criteria.maxLeadAgeMs / 1000)} s`;
  }
  return undefined;
}

/** Postal codes and prefixes compare ignoring case and spaces ("sw1a 1aa" starts with "SW1"). */
export function normalizedPostalCode(value: string): string {
  return value.replace(/\s+/g, "").toUpperCase();
}

export function salesToday(counters: SaleCounters, keys: CounterKeys): number {
  return counters.day === keys.day ? counters.dayCount : 0;
}

export function salesThisMonth(counters: SaleCounters, keys: CounterKeys): number {
  return counters.month === keys.month ? counters.monthCount : 0;
}

/** The counters after one more sale now: a count of an earlier period restarts at 1. */
export function countedSale(counters: SaleCounters, keys: CounterKeys): SaleCounters {
  return { day: keys.day, dayCount: salesToday(counters, keys) + 1, month: keys.month, monthCount: salesThisMonth(counters, keys) + 1 };
}

/** What ranking reads of a buyer that may take the lead. */
export interface RankedBuyer {
  id: string;
  priceMinor: number;
  /** Sales today in the tenant's time zone (salesToday). */
  salesToday: number;
}

/**
 * The order in which eligible buyers are offered the lead: the highest price
 * first, then the buyer with the fewest sales today, then a rotation fixed
 * per lead (sha256 of lead id + buyer id), so equal buyers share leads
 * fairly while every retry of one lead sees the same order. The buyer id
 * breaks the (practically impossible) hash tie: the order is total and does
 * not depend on the order of the input.
 */
export function rankBuyers<T extends RankedBuyer>(eligible: readonly T[], leadId: string): T[] {
  const rotation = new Map(eligible.map((buyer) => [buyer.id, rotationKey(leadId, buyer.id)]));
  return [...eligible].sort(
    (a, b) =>
      b.priceMinor - a.priceMinor ||
      a.salesToday - b.salesToday ||
      compareText(rotation.get(a.id) as string, rotation.get(b.id) as string) ||
      compareText(a.id, b.id),
  );
}

export function rotationKey(leadId: string, buyerId: string): string {
  return createHash("sha256").update(`${leadId}${buyerId}`).digest("hex");
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** PreconditionFailure violation text of a skip: the reason's enum name first, so clients can parse it back. */
export function skipDescription(skip: Skip): string {
  return `${BuyerSkipReason[skip.reason]}: ${skip.text}`;
}

/** The reason a skipDescription names, or UNSPECIFIED when it names none. */
export function skipReasonOf(description: string): BuyerSkipReason {
  const name = description.slice(0, description.indexOf(":"));
  const value = (BuyerSkipReason as unknown as Record<string, number | undefined>)[name];
  return typeof value === "number" ? value : BuyerSkipReason.BUYER_SKIP_REASON_UNSPECIFIED;
}
