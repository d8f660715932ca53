// Run by tests/system/test_advisory_sdk.py against a real daemon: TF_URL and TF_AGENT_KEY name it and the agent.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, TrustFenceError } from "../index.js";

const tf = Client.fromEnv();

test("an allowed action is executed once by the daemon", async () => {
  const r = await tf.requestAction("github.pr.merge", {
    parameters: { owner: "octo", repo: "node", number: 9 }, resource: { provider: "github", target: "octo/node#9" },
  });
  assert.equal(r.status, "allowed");
  assert.equal(r.decision.action, "github.pr.merge");
  assert.ok(r.decisionToken);
  const answer = await tf.execute(r);
  assert.equal(answer.statusCode, 200);
  assert.equal(answer.json().headers.authorization, "Bearer [redacted]");
  await assert.rejects(tf.execute(r), (e) => e instanceof TrustFenceError && e.status === 409);
});

test("a denied action says why and gets no token", async () => {
  const r = await tf.requestAction("github.repo.delete", { parameters: { owner: "octo", repo: "node" } });
  assert.equal(r.status, "denied");
  assert.equal(r.decisionToken, null);
  assert.match(r.decision.allowWith, /github\.repo\.delete/);
  await assert.rejects(tf.execute(r), (e) => e.status === 409);
});

test("bad input and a bad key are refused", async () => {
  await assert.rejects(tf.requestAction("github.pr.explode"), (e) => e.status === 400 && /unknown action type/.test(e.message));
  const stranger = new Client(process.env.TF_URL, "tfa_not-a-key");
  await assert.rejects(stranger.requestAction("github.pr.merge"), (e) => e.status === 401);
});

test("waitForApproval returns at once for an answered request", async () => {
  const r = await tf.requestAction("github.repo.delete", { parameters: { owner: "octo", repo: "node" } });
  const again = await tf.waitForApproval(r, { timeout: 5 });
  assert.equal(again.status, "denied");
  assert.equal(again.actionRequestId, r.actionRequestId);
});
