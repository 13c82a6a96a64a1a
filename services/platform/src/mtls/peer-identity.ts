/**
 * Who is on the other end of a call, decided below nice-grpc, where the
 * transport is still visible: a grpc-js server interceptor that writes the
 * verdict into internal metadata for the nice-grpc middleware (peer-access.ts):
 *  - `leadmesh-peer`: the verified SPIFFE id of the caller, or
 *  - `leadmesh-peer-problem`: why there is none (for the log and the error),
 *    and `leadmesh-peer-claimed`: the SPIFFE id an untrusted certificate
 *    claims (for the log only: nothing is decided on it);
 *  - `leadmesh-deadline`: the call's deadline in epoch ms (absent when none),
 *    which nice-grpc does not expose to handlers (clients.ts callOptionsFrom).
 * Incoming copies of these headers are deleted first: a client cannot name itself.
 *
 * mtls mode: the TLS layer asks for a client certificate but accepts any
 * (rejectUnauthorized false), so that a refusal can be logged with who tried
 * and why; grpc-js's getAuthContext() reports a peer certificate only when it
 * chains to our CA. sidecar mode: the local proxy did the TLS and tells us the
 * peer in x-forwarded-client-cert, believed only from a sidecar address.
 */
import { TLSSocket } from "node:tls";
import { type Metadata, ServerInterceptingCall, type ServerInterceptingCallInterface, type ServerInterceptor } from "@grpc/grpc-js";
import type { MeshSecurity } from "../service-config";
import { spiffeIdOfCertificate } from "./spiffe";
import { xfccPeerUri } from "./xfcc";

export const PEER_HEADER = "leadmesh-peer";
export const PEER_PROBLEM_HEADER = "leadmesh-peer-problem";
export const PEER_CLAIMED_HEADER = "leadmesh-peer-claimed";
export const DEADLINE_HEADER = "leadmesh-deadline";
export const XFCC_HEADER = "x-forwarded-client-cert";

/** Headers only this interceptor may write. */
const INTERNAL_HEADERS = [PEER_HEADER, PEER_PROBLEM_HEADER, PEER_CLAIMED_HEADER, DEADLINE_HEADER] as const;

export interface PeerIdentitySettings {
  mode: MeshSecurity;
  /** sidecar mode: TCP peer addresses allowed to set x-forwarded-client-cert. */
  sidecarPeers: readonly string[];
}

export type PeerVerdict = { id: string } | { problem: string; claimed?: string };

export function peerIdentityInterceptor(settings: PeerIdentitySettings): ServerInterceptor {
  const sidecars = new Set(settings.sidecarPeers.map(normalizeAddress));
  return (_method, call) =>
    new ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, passOn) {
            for (const header of INTERNAL_HEADERS) metadata.remove(header);
            const verdict = settings.mode === "mtls" ? tlsPeer(call) : sidecarPeer(metadata, remoteAddress(call), sidecars);
            // In mtls mode the header means nothing (nobody we trust wrote it): drop it so nothing downstream reads it.
            if (settings.mode === "mtls") metadata.remove(XFCC_HEADER);
            if ("id" in verdict) metadata.set(PEER_HEADER, verdict.id);
            else {
              metadata.set(PEER_PROBLEM_HEADER, headerSafe(verdict.problem));
              if (verdict.claimed) metadata.set(PEER_CLAIMED_HEADER, headerSafe(verdict.claimed));
            }
            const deadline = epochMs(call.getDeadline());
            if (deadline !== undefined) metadata.set(DEADLINE_HEADER, String(deadline));
            passOn(metadata);
          },
        });
      },
    });
}

/**
 * The verdict of each TLS connection, computed on its first call: a
 * connection's peer certificate cannot change (TLS 1.3 has no
 * renegotiation), and reading it (getPeerCertificate) costs tens of
 * microseconds per call, a tenth of a cached GetLead.
 */
const verdictsByConnection = new WeakMap<TLSSocket, PeerVerdict>();

/** The verified certificate's SPIFFE id, or why the caller has none. */
export function tlsPeer(call: ServerInterceptingCallInterface): PeerVerdict {
  const socket = tlsSocketOf(call);
  if (!socket) return tlsPeerOf(call, undefined);
  let verdict = verdictsByConnection.get(socket);
  if (!verdict) {
    verdict = tlsPeerOf(call, socket);
    verdictsByConnection.set(socket, verdict);
  }
  return verdict;
}

function tlsPeerOf(call: ServerInterceptingCallInterface, socket: TLSSocket | undefined): PeerVerdict {
  const verified = call.getAuthContext()?.sslPeerCertificate;
  if (verified) {
    const id = spiffeIdOfCertificate(verified.subjectaltname);
    return id ? { id } : { problem: "client certificate carries no single SPIFFE id" };
  }
  if (!socket) return { problem: "client certificate missing or not trusted" };
  const presented = socket.getPeerCertificate();
  if (!presented?.raw) return { problem: "no client certificate" };
  const claimed = spiffeIdOfCertificate(presented.subjectaltname);
  const reason = socket.authorizationError ? String((socket.authorizationError as Error).message ?? socket.authorizationError) : "not verified";
  const problem = `client certificate not trusted (${reason})${claimed ? `; it claims ${claimed}` : ""}`;
  return claimed ? { problem, claimed } : { problem };
}

export function sidecarPeer(metadata: Metadata, address: string | undefined, sidecars: ReadonlySet<string>): PeerVerdict {
  const values = metadata.get(XFCC_HEADER);
  metadata.remove(XFCC_HEADER);
  if (values.length === 0) return { problem: "x-forwarded-client-cert absent (the sidecar forwarded no client certificate)" };
  if (!address || !sidecars.has(normalizeAddress(address))) {
    return { problem: `x-forwarded-client-cert from ${address ?? "an unknown address"}, which is not a sidecar` };
  }
  return xfccVerdict(values.length === 1 ? String(values[0]) : values.map(String).join(","));
}

/**
 * Verdicts by XFCC value. A sidecar sends the same value for every call of
 * the same caller, and parsing it was a visible share of a cheap call's CPU.
 * Bounded: a caller varying the earlier elements (which it may write) only
 * empties the memo, never grows it.
 */
const xfccVerdicts = new Map<string, PeerVerdict>();
const XFCC_VERDICTS_MAX = 256;

function xfccVerdict(header: string): PeerVerdict {
  let verdict = xfccVerdicts.get(header);
  if (!verdict) {
    const id = xfccPeerUri(header);
    verdict = id?.startsWith("spiffe://") ? { id } : { problem: "x-forwarded-client-cert names no SPIFFE id (URI=)" };
    if (xfccVerdicts.size >= XFCC_VERDICTS_MAX) xfccVerdicts.clear();
    xfccVerdicts.set(header, verdict);
  }
  return verdict;
}

/**
 * The TLS socket under a server call, for the reason a certificate was
 * refused (grpc-js only exposes verified ones). Internal fields: walked
 * defensively, and without them the reason is just less precise.
 */
function tlsSocketOf(call: ServerInterceptingCallInterface): TLSSocket | undefined {
  let current: unknown = call;
  for (let depth = 0; depth < 16 && current; depth++) {
    const socket = (current as { stream?: { session?: { socket?: unknown } } }).stream?.session?.socket;
    if (socket instanceof TLSSocket) return socket;
    current = (current as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

function remoteAddress(call: ServerInterceptingCallInterface): string | undefined {
  return call.getConnectionInfo?.()?.remoteAddress;
}

/** "::ffff:127.0.0.1" (an IPv4 peer on a dual-stack socket) is 127.0.0.1. */
function normalizeAddress(address: string): string {
  if (!address.startsWith("::ffff:") && !address.startsWith("::FFFF:")) return address;
  return address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, "$1");
}

function epochMs(deadline: Date | number): number | undefined {
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/** Metadata values are ASCII without control characters. */
function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?").slice(0, 500);
}
