/**
 * Signed webhook deliveries, POSTed over HTTP the way GitHub sends them: the event name, the delivery id and the
 * HMAC-SHA256 signature of the exact body bytes (from @octokit/webhooks-methods).
 */
import { sign } from "@octokit/webhooks-methods";

export interface Delivery {
  id: string;
  name: string;
  payload: Record<string, unknown>;
}

export interface DeliveryAnswer {
  status: number;
  body: string;
  /** Milliseconds until the answer arrived. */
  ms: number;
}

export async function deliver(url: string, secret: string, d: Delivery, o: { signature?: string } = {}): Promise<DeliveryAnswer> {
  const body = JSON.stringify(d.payload);
  const signature = o.signature ?? (await sign(secret, body));
  const started = performance.now();
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": d.name,
      "x-github-delivery": d.id,
      "x-hub-signature-256": signature,
      "user-agent": "GitHub-Hookshot/test",
    },
    body,
  });
  return { status: res.status, body: await res.text(), ms: performance.now() - started };
}

/** Polls `probe` until it returns a value other than undefined/false, or fails after `timeoutMs` with `what`. */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
