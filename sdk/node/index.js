// TrustFence advisory SDK for Node (>= 20): ask the daemon before acting, and let it act (mode A).
// No dependencies beyond Node's own fetch.
//
//   import { Client } from "@trustfence/sdk";
//   const tf = Client.fromEnv();                      // TF_URL (default http://127.0.0.1:3000), TF_AGENT_KEY
//   let r = await tf.requestAction("github.pr.merge", { parameters: { owner: "octo", repo: "demo", number: 7 } });
//   if (r.pending) r = await tf.waitForApproval(r, { timeout: 300 });
//   if (r.allowed) console.log(await tf.execute(r));  // the daemon sends it, with the real credential

/** The daemon refused or could not answer: `status` (0: no answer), the reason, `retryAfter` for a 429. */
export class TrustFenceError extends Error {
  constructor(status, reason, retryAfter = 0) {
    super(reason);
    this.name = "TrustFenceError";
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/** One action request: `status` is "allowed" | "denied" | "pending_approval". */
export class ActionResult {
  constructor(data) {
    this.actionRequestId = data.action_request_id;
    this.status = data.status;
    const d = data.decision ?? {};
    this.decision = {
      outcome: d.outcome ?? "", reason: d.reason ?? "", riskScore: d.risk_score ?? null,
      matchedPolicies: d.matched_policies ?? [], risk: d.risk ?? "", action: d.action ?? "",
      connector: d.connector ?? "", decisionId: d.decision_id ?? "", allowWith: d.allow_with ?? "",
    };
    this.decisionToken = data.decision_token ?? null;
    this.approvalId = data.approval_id ?? null;
  }
  get allowed() { return this.status === "allowed"; }
  get denied() { return this.status === "denied"; }
  get pending() { return this.status === "pending_approval"; }
}

/** What the upstream answered when the daemon performed the action (its credential scrubbed out). */
export class ExecuteResult {
  constructor(data) {
    this.actionRequestId = data.action_request_id;
    this.statusCode = data.status_code;
    this.contentType = data.content_type;
    this.truncated = Boolean(data.truncated);
    this.body = data.body_base64 !== undefined ? Buffer.from(data.body_base64, "base64").toString("utf8") : data.body;
  }
  json() { return JSON.parse(this.body); }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Client {
  /** `retries`: how often a 429 is retried, waiting Retry-After (at most `maxWait` seconds) each time. */
  constructor(url, key, { timeout = 30, retries = 3, maxWait = 60, wait = sleep } = {}) {
    this.url = url.replace(/\/+$/, "");
    this.key = key;
    this.timeout = timeout;
    this.retries = retries;
    this.maxWait = maxWait;
    this.wait = wait;
  }

  static fromEnv(options = {}) {
    const key = process.env.TF_AGENT_KEY;
    if (!key) throw new TrustFenceError(401, "TF_AGENT_KEY is not set (tf agents register NAME prints a key)");
    return new Client(process.env.TF_URL ?? "http://127.0.0.1:3000", key, options);
  }

  /** Ask whether `type` (github.pr.merge) may be done with `parameters`. */
  async requestAction(type, { parameters = {}, resource, riskHints } = {}) {
    const spec = { type, parameters };
    if (resource) spec.resource = resource;
    if (riskHints) spec.risk_hints = riskHints;
    return new ActionResult(await this.#call("POST", "/api/v1/actions", { action_spec: spec }));
  }

  /** The request once answered, or still pending after `timeout` seconds. */
  async waitForApproval(result, { timeout = 300 } = {}) {
    const id = typeof result === "string" ? result : result.actionRequestId;
    const deadline = Date.now() + timeout * 1000;
    for (;;) {
      const left = (deadline - Date.now()) / 1000;
      const wait = Math.max(0, Math.min(60, Math.floor(left)));
      const got = new ActionResult(await this.#call("GET", `/api/v1/actions/${encodeURIComponent(id)}?wait=${wait}`,
        undefined, this.timeout + wait));
      if (!got.pending || left <= 0) return got;
    }
  }

  /** Have the daemon perform an allowed action (mode A); the upstream's answer. */
  async execute(result) {
    if (!result.decisionToken) {
      throw new TrustFenceError(409, `action request ${result.actionRequestId} is ${result.status}: no decision token`);
    }
    return new ExecuteResult(await this.#call("POST",
      `/api/v1/actions/${encodeURIComponent(result.actionRequestId)}/execute`, { decision_token: result.decisionToken }));
  }

  async #call(method, path, body, timeout = this.timeout) {
    for (let attempt = 0; ; attempt++) {
      let resp;
      try {
        resp = await fetch(this.url + path, {
          method,
          headers: { Authorization: `Bearer ${this.key}`, "Content-Type": "application/json", Accept: "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(timeout * 1000),
        });
      } catch (e) {
        throw new TrustFenceError(0, `the TrustFence daemon did not answer at ${this.url}: ${e.message}`);
      }
      const text = await resp.text();
      if (resp.ok) return JSON.parse(text);
      const retryAfter = Math.max(0, parseInt(resp.headers.get("retry-after") ?? "0", 10) || 0);
      if (resp.status === 429 && attempt < this.retries) {
        await this.wait(Math.min(Math.max(retryAfter, 1), this.maxWait) * 1000);
        continue;
      }
      let reason = text.slice(0, 300);
      try { reason = JSON.parse(text).error ?? reason; } catch { /* not JSON: the text itself */ }
      throw new TrustFenceError(resp.status, reason || `HTTP ${resp.status}`, retryAfter);
    }
  }
}
