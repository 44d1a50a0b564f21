// Drives the Vercel API simulator with Vercel's own SDK, over every call of
// deployq's pipeline that the SDK knows, and prints one JSON line per call:
// {"op": …, "ok": true} when the SDK read the answer (its Zod schemas
// validate every response), or {"op": …, "ok": false, "error": …}.
// The Go test sdk_test.go runs it against a simulator on loopback.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Vercel } from "@vercel/sdk";

const { SIM_URL, SIM_TOKEN, SIM_TEAM, SIM_ICFG, SIM_TARBALL } = process.env;
const vercel = new Vercel({ serverURL: SIM_URL, bearerToken: SIM_TOKEN });
const teamId = SIM_TEAM;
let failed = 0;

async function check(op, fn) {
  try {
    const out = await fn();
    console.log(JSON.stringify({ op, ok: true }));
    return out;
  } catch (err) {
    failed++;
    // A validation error names each member the schemas missed.
    const issues = err?.cause?.issues ?? err?.issues;
    const flat = (list) => list.flatMap((i) => i.code === "invalid_union" && i.unionErrors
      ? [{ path: i.path?.join("."), code: i.code, alternatives: i.unionErrors.map((e) => flat(e.issues).slice(0, 6)) }]
      : [{ path: i.path?.join("."), code: i.code, message: i.message }]);
    const detail = issues ? JSON.stringify(flat(issues)) : "";
    const error = (String(err?.message ?? err) + " " + detail).slice(0, 4000);
    console.log(JSON.stringify({ op, ok: false, error }));
    return undefined;
  }
}

const name = "sdkcheck-" + Date.now().toString(36);
const tarball = readFileSync(SIM_TARBALL);
const sha = createHash("sha1").update(tarball).digest("hex");

const project = await check("projects.createProject", () =>
  vercel.projects.createProject({ teamId, requestBody: { name, framework: "nextjs" } }));
await check("projects.getProject", () => vercel.projects.getProject({ teamId, idOrName: name }));
await check("projects.addProjectDomain", () =>
  vercel.projects.addProjectDomain({ teamId, idOrName: name, requestBody: { name: name + ".apps.example" } }));
await check("projects.getProjectDomain", () =>
  vercel.projects.getProjectDomain({ teamId, idOrName: name, domain: name + ".apps.example" }));
await check("deployments.uploadFile", () =>
  vercel.deployments.uploadFile({ teamId, xVercelDigest: sha, contentLength: tarball.length, requestBody: new Uint8Array(tarball) }));
const store = await check("integrations.createIntegrationStoreDirect", () =>
  vercel.integrations.createIntegrationStoreDirect({ teamId, requestBody: {
    name: name + "-db", integrationConfigurationId: SIM_ICFG, integrationProductIdOrSlug: "prisma-postgres",
    metadata: { region: "iad1" } } }));
// The SDK's schema of the created store keeps no id: the listing names it.
const resources = await check("marketplace.getIntegrationResources", () =>
  vercel.marketplace.getIntegrationResources({ integrationConfigurationId: SIM_ICFG }));
const resource = resources?.resources?.find((r) => r.name === name + "-db");
if (project && store && resource) {
  await check("integrations.connectIntegrationResourceToProject", () =>
    vercel.integrations.connectIntegrationResourceToProject({ teamId, integrationConfigurationId: SIM_ICFG,
      resourceId: resource.internalId, requestBody: { projectId: project.id } }));
} else {
  failed++;
  console.log(JSON.stringify({ op: "integrations.connectIntegrationResourceToProject", ok: false, error: "no store to connect in the listing" }));
}
const deployment = await check("deployments.createDeployment", () =>
  vercel.deployments.createDeployment({ teamId, requestBody: {
    name, project: name, target: "production", projectSettings: { framework: "nextjs" },
    files: [{ file: ".vercel/source.tgz", sha, size: tarball.length }] } }));
if (deployment) {
  // Every state the build passes through, READY included.
  for (let i = 0; i < 100; i++) {
    const d = await check("deployments.getDeployment (" + "readyState" + ")", () =>
      vercel.deployments.getDeployment({ teamId, idOrUrl: deployment.id }));
    if (!d || (d.readyState === "READY" && d.aliasAssigned) || d.readyState === "BLOCKED" || d.readyState === "ERROR") break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await check("deployments.getDeploymentEvents", () =>
    vercel.deployments.getDeploymentEvents({ teamId, idOrUrl: deployment.id }));
  await check("deployments.getDeployments", () =>
    vercel.deployments.getDeployments({ teamId, projectId: deployment.projectId, limit: 20 }));
}
await check("projects.createProjectTransferRequest", () =>
  vercel.projects.createProjectTransferRequest({ teamId, idOrName: name, requestBody: {} }));
await check("projects.deleteProject", () => vercel.projects.deleteProject({ teamId, idOrName: name }));
// A claim: another project's code accepted by the user's team (the
// simulator's claiming team), which takes the project away.
const claimed = name + "-claimed";
await check("projects.createProject (to claim)", () =>
  vercel.projects.createProject({ teamId, requestBody: { name: claimed } }));
const transfer = await check("projects.createProjectTransferRequest (to claim)", () =>
  vercel.projects.createProjectTransferRequest({ teamId, idOrName: claimed,
    requestBody: { callbackUrl: "http://127.0.0.1:9/claimed", callbackSecret: "s3cret" } }));
if (transfer) {
  await check("projects.acceptProjectTransferRequest", () =>
    vercel.projects.acceptProjectTransferRequest({ teamId: "team_claimer", code: transfer.code, requestBody: {} }));
}
process.exit(failed ? 1 : 0);
